"""Start-up failure lines: the cause in one line, never a URL's password."""

from __future__ import annotations

import errno

from sqlalchemy.exc import DBAPIError

from gateway.startup import cause


def test_cause_masks_the_password_of_the_url_wherever_it_appears() -> None:
    url = "redis://:s3cr%40t@cache:6379/0?password=other-s3cret"
    error = ValueError("cannot use redis://:s3cr@t@cache:6379/0?password=other-s3cret\nmore")

    assert cause(error, url) == "cannot use redis://:***@cache:6379/0?password=***"


def test_cause_words_an_os_error_by_its_errno() -> None:
    bind = OSError(errno.EADDRINUSE, "error while attempting to bind on address: in use")

    assert cause(bind) == "address already in use"
    assert cause(FileNotFoundError(errno.ENOENT, "gone", "/srv/okryu")) == (
        "no such file or directory: /srv/okryu"
    )


def test_cause_of_a_database_error_is_the_driver_s_first_line() -> None:
    wrapped = DBAPIError("SELECT 1", None, Exception('database "shop" does not exist\nDETAIL'))

    assert cause(wrapped) == 'database "shop" does not exist'
    assert cause(TimeoutError()) == "timed out"
