"""The HTTP layer under :class:`~syncd.remote.client.FilesClient`: httpx without a cookie jar,
the key added per request, and the headers of each API version."""

from __future__ import annotations

from collections.abc import Generator

import httpx

from syncd import __version__
from syncd.remote.protocol import BETA_VERSION, FILES_BETA, ApiVersion


class ApiKeyAuth(httpx.Auth):
    """Adds the key per request, so it never sits in client-wide headers or a repr.

    GA sends ``Authorization: Bearer`` as the official SDK does; the 2025 beta ``x-api-key``.
    """

    def __init__(self, key: str, bearer: bool) -> None:
        self._key = key
        self._bearer = bearer

    def __repr__(self) -> str:
        return "ApiKeyAuth(key=<hidden>)"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._bearer:
            request.headers["authorization"] = f"Bearer {self._key}"
        else:
            request.headers["x-api-key"] = self._key
        yield request


def version_headers(api_version: ApiVersion) -> dict[str, str]:
    """The headers every request of ``api_version`` carries (the key aside)."""
    headers = {"anthropic-version": api_version, "user-agent": f"syncd/{__version__}"}
    if api_version == BETA_VERSION:
        headers["anthropic-beta"] = FILES_BETA
    return headers


class NoCookies(httpx.Cookies):
    """A jar that keeps nothing. The API authenticates by key; a cookie a proxy or the service
    sets is state syncd never sends back, and parsing every answer for one costs a tenth of an
    upload's CPU."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class HttpClient(httpx.Client):
    """httpx's client without a cookie jar (see :class:`NoCookies`)."""

    _jar = NoCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._jar

    @cookies.setter
    def cookies(self, cookies: object) -> None:
        raise AttributeError("syncd's client keeps no cookies")
