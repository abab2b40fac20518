import logging

from mobimart.logs import quiet_url_loggers


def test_access_log_keeps_paths_and_drops_query_strings() -> None:
    quiet_url_loggers()
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        (
            "127.0.0.1:5000",
            "GET",
            "/api/v1/sms/inbound?secret=s3cret&from=%2B8613912345678",
            "1.1",
            200,
        ),
        None,
    )
    for f in logging.getLogger("uvicorn.access").filters:
        f.filter(record)
    line = record.getMessage()
    assert "/api/v1/sms/inbound?…" in line
    assert "s3cret" not in line
    assert "13912345678" not in line
