"""The analyst workspace only reads; what it writes is the record of its exports."""

from apps.analyst.selectors import TransactionFilters
from apps.audit.services import audit_record

EXPORT_STARTED = "analyst.export_started"
EXPORT_FINISHED = "analyst.export_finished"


def export_started_record(*, issuer, actor: str, filters: TransactionFilters, export_id: str) -> None:
    """Written before the first byte leaves: an export is on record even if the process dies."""
    audit_record(issuer=issuer, kind=EXPORT_STARTED, actor=actor, data={"export": export_id, "filters": filters.describe()})


def export_finished_record(*, issuer, actor: str, filters: TransactionFilters, export_id: str, rows: int, completed: bool) -> None:
    """`completed` is false when the download stopped early (client gone, error): `rows` were sent."""
    audit_record(
        issuer=issuer, kind=EXPORT_FINISHED, actor=actor,
        data={"export": export_id, "filters": filters.describe(), "rows": rows, "completed": completed},
    )
