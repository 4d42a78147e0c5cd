from celery import shared_task

from apps.otp.services import otp_expire_codes


@shared_task(name="timeouts.otp_expire_codes")
def expire_codes() -> int:
    return otp_expire_codes()
