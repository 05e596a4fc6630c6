"""The transport of a delivery: which URLs we may call (SSRF guard), Standard Webhooks signing, and one HTTP POST
that connects to the address it checked and never follows a redirect.

Plain http.client instead of a client library: we need to pin the connection to the checked
IP while keeping the name for Host and TLS (SNI and certificate check), a hard total deadline
and a capped body read, and a library's redirect, proxy and pool behaviour would all have to
be switched off one by one."""

import base64
import contextlib
import hashlib
import hmac
import http.client
import ipaddress
import re
import secrets
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import quote, urlsplit, urlunsplit

import idna
from django.conf import settings

SECRET_PREFIX = "whsec_"
# Standard Webhooks: total budget per attempt. Connect gets a shorter slice so a dead host
# fails fast and frees the worker for other receivers.
CONNECT_TIMEOUT = 5.0
TOTAL_TIMEOUT = 15.0
# We only need the status; the body is read up to this cap for the owner to see, never more.
RESPONSE_BODY_CAP = 512
USER_AGENT = "SolidarityReferralNetwork-Webhooks/1"

# IPv6 forms that carry an IPv4 address which a translator, tunnel or relay reaches on our
# behalf; each embedded address is judged like a plain IPv4 one. The well-known NAT64 prefix
# (RFC 6052) holds it in its last 32 bits. The local-use prefix (RFC 8215) may hold it at any of
# the RFC 6052 positions for a prefix of /48 or longer (byte offsets below, skipping the "u"
# octet), and we cannot know which the operator chose: every reading must be public.
NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
RFC6052_POSITIONS = ((6, 7, 9, 10), (7, 9, 10, 11), (9, 10, 11, 12), (12, 13, 14, 15))
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
# Cloud metadata services that are not covered by link-local (AWS IPv6, Alibaba).
METADATA_ADDRESSES = {
    ipaddress.ip_address("fd00:ec2::254"),
    ipaddress.ip_address("100.100.100.200"),
}


class URLRefused(Exception):
    """The URL or the address it resolves to is not one we will call."""


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signature_header(secrets_: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """Space-separated signatures, one per live secret (two during a rotation)."""
    return " ".join(sign(secret, msg_id, timestamp, body) for secret in secrets_)


def embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[str, list[ipaddress.IPv4Address]]:
    """The form an IPv6 address takes and the IPv4 addresses it really reaches: IPv4-mapped and
    -compatible, NAT64, 6to4 and Teredo (its server and its client); ("", []) for none."""
    if address.ipv4_mapped is not None:
        return "IPv4-mapped", [address.ipv4_mapped]
    if address in NAT64_WELL_KNOWN:
        return "NAT64", [ipaddress.IPv4Address(address.packed[12:])]
    if address in NAT64_LOCAL:
        packed = address.packed
        readings = (bytes(packed[i] for i in position) for position in RFC6052_POSITIONS)
        return "NAT64", [ipaddress.IPv4Address(reading) for reading in readings]
    if address.sixtofour is not None:
        return "6to4", [address.sixtofour]
    if address.teredo is not None:
        return "Teredo", list(address.teredo)
    if address in IPV4_COMPATIBLE and int(address) > 1:
        return "IPv4-compatible", [ipaddress.IPv4Address(address.packed[12:])]
    return "", []


def _plain_problem(address) -> str | None:
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address (this includes cloud metadata services)"
    if address.is_multicast:
        return "a multicast address"
    if address.is_reserved or address.is_unspecified:
        return "a reserved address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        return "a non-public address"
    return None


# Forms that mean nothing but the IPv4 address they carry; 6to4 and Teredo addresses are
# judged as IPv6 addresses too.
TRANSLATIONS = frozenset({"IPv4-mapped", "IPv4-compatible", "NAT64"})


def address_problem(address) -> str | None:
    """Why we will not connect to this address, or None when it is a public unicast one, also
    through every IPv4 address it embeds."""
    address = ipaddress.ip_address(address)
    if isinstance(address, ipaddress.IPv6Address):
        form, embedded = embedded_ipv4(address)
        for inner in embedded:
            why = _plain_problem(inner)
            if why is not None:
                return f"{why} ({inner}, embedded in its {form} form)"
        if form in TRANSLATIONS:
            return None
    return _plain_problem(address)


def resolve(host: str, port: int) -> list[str]:
    """Every address the name resolves to. Kept as one function so tests can stand in for DNS."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


@dataclass(frozen=True)
class Target:
    url: str
    scheme: str
    host: str
    port: int
    path: str


# RFC 3986: what may stand unescaped in a path, and in a query or fragment; "%" stays so that
# existing escapes are kept. Everything else (non-ASCII, spaces, controls, backslashes) is
# percent-encoded as UTF-8.
PATH_SAFE = "/:@!$&'()*+,;=-._~%"
QUERY_SAFE = PATH_SAFE + "?"
STRAY_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _encoded(part: str, safe: str) -> str:
    return quote(STRAY_PERCENT.sub("%25", part), safe=safe)


def _ascii_host(host: str) -> str:
    """The host as DNS and TLS see it: lower case, each non-ASCII label in IDNA 2008 (UTS 46
    mapping, as browsers do)."""
    if host.isascii():
        return host.lower()
    try:
        mapped = idna.uts46_remap(host, std3_rules=False, transitional=False)
        labels = [
            label if label.isascii() else idna.alabel(label).decode() for label in mapped.split(".")
        ]
    except (idna.IDNAError, UnicodeError) as exc:
        raise URLRefused(f"The host {host!r} is not a valid domain name: {exc}.") from exc
    return ".".join(labels).lower()


def normalise_url(url: str) -> str:
    """The URL as it goes on the wire: the host in IDNA, path, query and fragment percent-encoded
    as UTF-8, existing escapes kept. A URL that had to be encoded at send time raised in the
    worker on every attempt, so it is normalised when saved, and again before every attempt
    (idempotent) for URLs saved before this rule."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise URLRefused(f"The URL is not valid: {exc}.") from exc
    if not parts.hostname:
        raise URLRefused("The URL has no host.")
    if parts.username or parts.password:
        raise URLRefused("The URL must not carry credentials.")
    host = _ascii_host(parts.hostname)
    if not host:
        # IDNA maps some characters (a soft hyphen) to nothing.
        raise URLRefused("The URL has no host.")
    netloc = (f"[{host}]" if ":" in host else host) + (f":{port}" if port is not None else "")
    return urlunsplit(
        (
            parts.scheme.lower(),
            netloc,
            _encoded(parts.path, PATH_SAFE),
            _encoded(parts.query, QUERY_SAFE),
            _encoded(parts.fragment, QUERY_SAFE),
        )
    )


def parse_url(url: str) -> Target:
    """Shape checks that need no DNS: scheme, host, no credentials; on the normalised URL."""
    url = normalise_url(url)
    parts = urlsplit(url)
    scheme = parts.scheme
    if scheme not in ("https", "http"):
        raise URLRefused("Only https:// URLs are accepted.")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(
        url=url,
        scheme=scheme,
        host=parts.hostname,
        port=parts.port or (443 if scheme == "https" else 80),
        path=path,
    )


def _loopback_allowed(address) -> bool:
    """Test and development receivers on this machine (never in production), also written as an
    IPv4-mapped address; not through a NAT64, 6to4 or Teredo form, which reach another host."""
    if not settings.ALLOW_LOOPBACK_WEBHOOKS:
        return False
    address = ipaddress.ip_address(address)
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def check_url(url: str) -> tuple[Target, str]:
    """Refuse the URL or return it with the one address to connect to. Every resolved address
    must pass, so a name with one public and one internal address cannot be used to reach the
    internal one. Run when the URL is saved and again before every attempt (DNS rebinding)."""
    target = parse_url(url)
    try:
        literal = ipaddress.ip_address(target.host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = resolve(target.host, target.port)
        except (OSError, UnicodeError) as exc:
            raise URLRefused(f"The host {target.host!r} does not resolve.") from exc
        if not addresses:
            raise URLRefused(f"The host {target.host!r} does not resolve.")
    for address in addresses:
        if _loopback_allowed(address):
            continue
        why = address_problem(address)
        if why is not None:
            raise URLRefused(f"The host {target.host!r} resolves to {address}, {why}.")
    if target.scheme != "https" and not all(_loopback_allowed(a) for a in addresses):
        raise URLRefused("Only https:// URLs are accepted.")
    return target, addresses[0]


def tls_context() -> ssl.SSLContext:
    """The system's trust store with certificate and host name checks (the defaults)."""
    return ssl.create_default_context()


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the checked address; Host still names the URL's host."""

    def __init__(self, host, port, address, timeout):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """Connects to the checked address; SNI and the certificate check use the URL's host."""

    def __init__(self, host, port, address, timeout):
        super().__init__(host, port, timeout=timeout, context=tls_context())
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


@dataclass
class Outcome:
    status_code: int | None = None
    latency_ms: int = 0
    error: str = ""
    excerpt: str = ""
    retry_after: float | None = None
    address: str = ""

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


def post(url: str, body: bytes, headers: dict[str, str]) -> Outcome:
    """One attempt. Never raises for network trouble: the outcome records it."""
    started = time.monotonic()
    try:
        target, address = check_url(url)
    except URLRefused as exc:
        return Outcome(error=f"refused: {exc}")
    connection_class = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    connection = connection_class(target.host, target.port, address, CONNECT_TIMEOUT)
    # Socket timeouts are per operation; a receiver dripping one byte at a time could hold us
    # far past the budget, so a timer closes the socket at the total deadline.
    watchdog = threading.Timer(TOTAL_TIMEOUT, _abort, args=(connection,))
    watchdog.daemon = True
    watchdog.start()
    outcome = Outcome(address=address)
    try:
        connection.connect()
        connection.sock.settimeout(max(0.1, TOTAL_TIMEOUT - (time.monotonic() - started)))
        connection.request(
            "POST",
            target.path,
            body=body,
            headers={
                "Content-Type": "application/json",
                **headers,
                "User-Agent": USER_AGENT,
                "Connection": "close",
            },
        )
        response = connection.getresponse()
        outcome.status_code = response.status
        outcome.excerpt = response.read(RESPONSE_BODY_CAP).decode("utf-8", "replace")
        if 300 <= response.status < 400:
            location = response.getheader("Location", "")[:200]
            outcome.error = f"redirect to {location!r} not followed"
        elif response.status in (429, 503):
            outcome.retry_after = parse_retry_after(response.getheader("Retry-After"))
    except TimeoutError:
        outcome.error = "timed out"
    except ssl.SSLError as exc:
        outcome.error = f"TLS error: {exc.reason or exc}"
    except (OSError, http.client.HTTPException) as exc:
        timed_out = time.monotonic() - started >= TOTAL_TIMEOUT - 0.05
        outcome.error = "timed out" if timed_out else f"connection error: {exc.__class__.__name__}"
    finally:
        watchdog.cancel()
        connection.close()
        outcome.latency_ms = int((time.monotonic() - started) * 1000)
    return outcome


def _abort(connection) -> None:
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
