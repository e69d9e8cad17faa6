"""A small HTTP client for a served portal, as a browser behind the TLS proxy would be.

Each client keeps its own cookies (a browser profile) and comes from its own address, which
the proxy passes on in X-Forwarded-For. Cookies are kept whatever their Secure flag, because
the proxy, not this client, speaks TLS.
"""

from __future__ import annotations

import http.client
import re
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import urlencode, urlparse


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes
    complete: bool = True

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")

    def header(self, name: str) -> str:
        return self.headers.get(name, "")


@dataclass
class WebClient:
    base_url: str
    address: str = "203.0.113.10"
    cookies: dict[str, str] = field(default_factory=dict)
    timeout: float = 120.0

    def request(
        self,
        method: str,
        path: str,
        data: dict | None = None,
        headers: dict | None = None,
    ) -> Reply:
        """Send one request (form-encoded data for a POST, with the CSRF token) and read all."""
        url = urlparse(self.base_url)
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=self.timeout)
        sent = {**self.proxy_headers(), **(headers or {})}
        body = None
        if method == "POST":
            form = dict(data or {})
            form.setdefault("csrfmiddlewaretoken", self._csrf_token())
            body = urlencode(form, doseq=True)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
            sent["Origin"] = f"https://{url.hostname}:{url.port}"
        if method == "POST-FILES":
            method, body = "POST", (data or {})["body"]
            sent["Content-Type"] = (data or {})["content_type"]
            sent["Origin"] = f"https://{url.hostname}:{url.port}"
        try:
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            self._keep_cookies(response.headers)
            complete = True
            try:
                content = response.read()
            except http.client.IncompleteRead as exc:
                content, complete = exc.partial, False
            return Reply(response.status, response.headers, content, complete)
        finally:
            conn.close()

    def same_browser(self, n: int) -> list[WebClient]:
        """This client and n - 1 more connections of the same browser (cookies, address)."""
        return [self] + [
            WebClient(self.base_url, address=self.address, cookies=dict(self.cookies))
            for _ in range(n - 1)
        ]

    def open_upload_link(self, link: dict) -> None:
        """Open an upload link and verify as its sender (link: served_data.upload_link's)."""
        assert self.get(link["path"]).status == 303
        assert self.get("/u/").status == 200  # the verification form
        answer = {"password": link["password"], "birth_date": link["birth_date"]}
        assert self.post("/u/", answer).status == 303

    def get(self, path: str, headers: dict | None = None) -> Reply:
        return self.request("GET", path, headers=headers)

    def post(self, path: str, data: dict | None = None) -> Reply:
        return self.request("POST", path, data)

    def proxy_headers(self) -> dict[str, str]:
        """What every request carries: the proxy's forwarding headers and this browser's cookies."""
        sent = {
            "X-Forwarded-For": self.address,
            "X-Forwarded-Proto": "https",
            "User-Agent": "portal-tests",
        }
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        return sent

    def post_files(self, path: str, files: list[tuple[str, bytes]]) -> Reply:
        """POST files as a browser's file form does (multipart, field `files`, CSRF token)."""
        body, content_type = self.files_form(files)
        return self.request("POST-FILES", path, {"body": body, "content_type": content_type})

    def files_form(self, files: list[tuple[str, bytes]]) -> tuple[bytes, str]:
        """Return a file form's body and content type, as post_files sends them."""
        boundary = "----portal-webclient-5c1b7e0a9d"
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="csrfmiddlewaretoken"'
            f"\r\n\r\n{self._csrf_token()}\r\n".encode()
        ]
        for name, content in files:
            parts.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
                f'filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
                + content
                + b"\r\n"
            )
        parts.append(f"--{boundary}--\r\n".encode())
        return b"".join(parts), f"multipart/form-data; boundary={boundary}"

    def _csrf_token(self) -> str:
        return next((v for k, v in self.cookies.items() if k.endswith("portal_csrf")), "")

    def sign_in_staff(self, account: dict) -> tuple[int, int]:
        """Sign in with a password and an authenticator code (account: username, password,
        totp_key in hex, as tests.integration.served_data returns it); return both statuses,
        (302, 302) when signed in."""
        from django_otp.oath import totp

        self.get("/login/")
        password = self.post(
            "/login/", {"username": account["username"], "password": account["password"]}
        )
        code = f"{totp(bytes.fromhex(account['totp_key'])):06d}"
        return password.status, self.post("/login/verify/", {"token": code}).status

    def _keep_cookies(self, headers: http.client.HTTPMessage) -> None:
        for raw in headers.get_all("Set-Cookie") or []:
            cookie = SimpleCookie()
            cookie.load(raw)
            for name, morsel in cookie.items():
                if morsel["max-age"] == "0" or re.search(r"expires=Thu, 01 Jan 1970", raw, re.I):
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
