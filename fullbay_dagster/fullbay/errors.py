"""Error types that tell the caller whether retrying can help.

Messages never contain the API key, the token or a URL with its query string.
"""

from __future__ import annotations

from fullbay_dagster.fullbay.auth import Dating


class FullbayError(Exception):
    """Base class for every error the Fullbay client raises."""


class FullbayPermanentError(FullbayError):
    """Retrying the same request cannot succeed (bad input, bad configuration)."""


class FullbayEndpointError(FullbayPermanentError):
    """FULLBAY_API_BASE_URL cannot be reached or does not answer like the Fullbay API."""


class FullbayAuthError(FullbayPermanentError):
    """Fullbay rejected the key, the token or the caller's IP."""

    def __init__(self, message: str, dating: Dating | None = None) -> None:
        super().__init__(message)
        self.dating = dating  # how the refused call's token was dated (no secret)


class FullbayTransientError(FullbayError):
    """A failure that a later attempt may not see (429, 5xx, timeouts, resets, garbled bodies)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class FullbayGaveUpError(FullbayError):
    """Transient failures went on past the retry budget or the total deadline."""


class FullbayInconsistentWindowError(FullbayPermanentError):
    """A window's pages stayed inconsistent over several fetches (contents changing
    between fetches, or fewer distinct invoices than ``totalCount``). Permanent for
    this run: fetching it again at once would only repeat the wait."""


class FullbayRepeatsError(FullbayTransientError):
    """Invoices appeared on two pages of a window: fetch it again to see whether
    the repeats are stable. ``digests`` fingerprints the pages of this fetch."""

    def __init__(self, message: str, digests: tuple[str, ...]) -> None:
        super().__init__(message)
        self.digests = digests
