from celery import shared_task

from apps.delivery import engine
from apps.threeds import rreq

# ---- RReq to the DS: a channel of the delivery engine, on its own queue ("rreq.*").


# Only the delivery id travels.
@shared_task(name="rreq.send", **engine.SEND_TASK_OPTIONS)  # routed to the "rreq" queue
def rreq_send(self, delivery_id) -> None:
    engine.run_task(self, rreq.RREQ_CHANNEL, delivery_id)


# ---- Challenge timeouts (SPEC §3.4): enforced by beat, not only when the cardholder comes back.


@shared_task(name="timeouts.challenges", ignore_result=True)
def challenges_time_out() -> int:
    from apps.threeds.challenge import challenges_time_out as sweep
    from apps.threeds.method import method_data_sweep

    # The 3DS Method's data past its 10 minutes rides along: no schedule entry of its own.
    method_data_sweep()
    return sweep()
