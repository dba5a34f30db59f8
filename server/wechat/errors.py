"""The one exception the WeChat gateway raises.

`errcode` is WeChat's own code, or None when no WeChat answer was read at all (connection
refused, timeout, HTTP error status, a body that is not JSON). Services map errcodes to
Chinese messages; this module only classifies them.
"""

from __future__ import annotations

#: The access token was rejected: drop it, fetch a new one, retry once.
TOKEN_ERRCODES = frozenset({40001, 40014, 42001})
#: WeChat is busy (-1): the same request may succeed a moment later.
BUSY_ERRCODE = -1
#: Rate limited (45011 per-user login limit / API minute quota; 45009 daily quota).
RATE_LIMIT_ERRCODES = frozenset({45009, 45011})


class WeChatError(Exception):
    """A WeChat call failed. `errcode` None means a transport failure."""

    def __init__(
        self,
        errcode: int | None,
        errmsg: str,
        *,
        path: str | None = None,
        http_status: int | None = None,
    ) -> None:
        self.errcode = errcode
        self.errmsg = errmsg
        #: The API path that failed, e.g. "sns/jscode2session" (for logs).
        self.path = path
        #: The HTTP status when WeChat answered with an error status (5xx, 4xx).
        self.http_status = http_status
        super().__init__(f"WeChat {path or 'call'} failed: errcode={errcode} errmsg={errmsg}")

    @property
    def is_token_error(self) -> bool:
        return self.errcode in TOKEN_ERRCODES

    @property
    def is_rate_limited(self) -> bool:
        return self.errcode in RATE_LIMIT_ERRCODES

    @property
    def retryable(self) -> bool:
        """Whether repeating the same request after a short backoff may succeed.

        True for transport failures (None), WeChat busy (-1) and token errors (the gateway
        already retried once with a fresh token). Rate limits (45009/45011) are False on
        purpose: retrying soon only burns more quota; callers that queue work should check
        `is_rate_limited` and back off for minutes. Everything else (bad code, used code,
        risky user 40226, bad data 47003, refused 43101, ...) will fail the same way again.
        Note that a timeout on a send may still have been delivered (at-least-once).
        """
        return self.errcode is None or self.errcode == BUSY_ERRCODE or self.is_token_error
