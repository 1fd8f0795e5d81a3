"""What can go on the wire: whether a URL, a proxy URL, a header name or a header
value can be sent, and a proxy URL's password kept out of messages.

Each check returns what is wrong (completing "<value> ...") or None; the job
file's loader (``loader``) runs them at load, with sample values in the
placeholders, and ``bound.bind`` again with the environment's
values. This module raises nothing and sends nothing (httpx is imported only
to ask its URL parser).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from importlib.util import find_spec
from urllib.parse import unquote, urlsplit

from resumer.job.messages import breaks_line, quoted
from resumer.job.template import PLACEHOLDERS, Template, quote_segment

PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")
SAMPLE_VALUE = "1"  # fills placeholders and ${VAR}s when a URL is checked at load
URL_SCHEMES = ("http", "https")

_HTTP_PREFIX = re.compile("(?:" + "|".join(URL_SCHEMES) + ")://", re.IGNORECASE)
_HOST = re.compile(r"[\w.~!$&'()*+,;=%-]+")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _control(text: str, *, tab: bool = False) -> str | None:
    """The first control character in ``text``, escaped (``\\n``), or None."""
    for char in text:
        if breaks_line(char) and not (tab and char == "\t"):
            return repr(char)[1:-1]
    return None


def with_samples(url: str, env: Mapping[str, str]) -> str:
    """``url`` with every placeholder a sample value, and its ``${VAR}``s from ``env``
    (a sample value for those ``env`` lacks)."""
    template = Template.compile(url)
    bound = template.bind_env({**dict.fromkeys(template.env_vars, SAMPLE_VALUE), **env})
    return bound.render(dict.fromkeys(PLACEHOLDERS, SAMPLE_VALUE), quote_segment)


def url_problem(url: str) -> str | None:
    """What makes ``url`` unusable as an HTTP endpoint (completing "<url> ..."), or None.

    >>> url_problem("ftp://x/c")
    'must start with http:// or https://'
    >>> url_problem("http://127.0.0.1:8808/c") is None
    True
    """
    control = _control(url)
    if control:
        return f"holds a control character ({control})"
    if not _HTTP_PREFIX.match(url):
        return "must start with " + " or ".join(f"{scheme}://" for scheme in URL_SCHEMES)
    try:
        netloc = urlsplit(url).netloc
    except ValueError as error:  # an unclosed "[", characters NFKC turns into "/" ...
        return f"is not a valid URL ({error})"
    host, port = _host_and_port(netloc.rpartition("@")[2])
    if not host:
        return "has no host (expected http://host/...)"
    if port is not None and not (
        port.isascii() and port.isdigit() and len(port) <= 5 and 1 <= int(port) <= 65535
    ):
        return f"has port {quoted(port)}: expected a number from 1 to 65535"
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1].partition("%")[0])
        except ValueError:
            return f"has an invalid IPv6 address {quoted(host)}"
    elif not _HOST.fullmatch(host):
        return f"has an invalid host {quoted(host)}"
    return _httpx_problem(url)


def proxy_problem(url: str, engine: str = "httpx") -> str | None:
    """What makes ``url`` unusable as ``request.proxy`` (completing "<url> ..."), or None.
    ``engine``: the job's; SOCKS on httpx needs socksio (libcurl speaks it itself).

    >>> proxy_problem("ftp://proxy:3128")
    'must start with http://, https://, socks5:// or socks5h://'
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in PROXY_SCHEMES:
        return (
            "must start with "
            + ", ".join(f"{s}://" for s in PROXY_SCHEMES[:-1])
            + (f" or {PROXY_SCHEMES[-1]}://")
        )
    problem = url_problem(f"http://{rest}")
    socks = problem is None and scheme.lower().startswith("socks")
    on_httpx = engine == "httpx" or not find_spec("pycurl")  # without pycurl, curl is httpx
    if socks and on_httpx and not find_spec("socksio"):
        return "is a SOCKS proxy, which needs the socksio package: pip install 'httpx[socks]'"
    return problem


def mask_userinfo(url: str) -> str:
    """``url`` with the password of its ``user:password@`` part masked.

    >>> mask_userinfo("http://me:s3cret@proxy:3128")
    'http://me:***@proxy:3128'
    """
    scheme, sep, rest = url.partition("://")
    userinfo, at, hostpart = rest.partition("@")
    if not (sep and at) or ":" not in userinfo or "/" in userinfo:
        return url
    return f"{scheme}://{userinfo.partition(':')[0]}:***@{hostpart}"


def proxy_secrets(url: str) -> list[str]:
    """The password written in a proxy URL (its percent-decoded form too), if any."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return []
    if not password:
        return []
    return list(dict.fromkeys([password, unquote(password)]))


def _host_and_port(hostport: str) -> tuple[str, str | None]:
    """``host[:port]`` or ``[v6]:port`` split; the port is None when absent or empty."""
    if hostport.startswith("["):
        inner, _, rest = hostport.partition("]")
        host, port = inner + "]", rest[1:] if rest.startswith(":") else rest or None
        return host, port or None
    host, _, port = hostport.partition(":")
    return host, port or None


def _httpx_problem(url: str) -> str | None:
    """What httpx itself refuses in ``url`` (the URL it will be given at run time)."""
    import httpx  # the client's own parser; imported only to check a job that will run

    try:
        httpx.URL(url)
    except httpx.InvalidURL as error:
        return f"is not a valid URL ({error})"
    return None


def header_name_problem(name: str) -> str | None:
    """What makes ``name`` unusable as an HTTP header name (RFC 9110 token), or None."""
    if _TOKEN.fullmatch(name):
        return None
    return "not a valid header name (letters, digits and !#$%&'*+-.^_`|~ only)"


def header_value_problem(value: str) -> str | None:
    """What makes ``value`` unsendable as an HTTP header value, or None."""
    if "\r" in value or "\n" in value:
        return "holds a line break (CR or LF): a header is one line"
    control = _control(value, tab=True)
    if control:
        return f"holds a control character ({control})"
    if not value.isascii():
        return "holds a character that is not ASCII (header values are sent as ASCII)"
    return None
