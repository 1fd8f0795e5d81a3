"""TLS for every call: the one ``ssl.SSLContext`` built from ``[request.tls]``, and what
a TLS failure means for the user.

Trust, by default, is the operating system's store (``truststore``: where companies
install their CA), plus ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when set;
``ca_bundle`` replaces it with the CAs of one PEM file; ``verify = false`` checks
nothing (and says so, once, at WARNING). ``client_cert`` / ``client_key`` present
a certificate to servers that ask for one (mutual TLS).

``tls_problem`` turns a failed handshake (an exception httpx raised) into one
line naming what failed and the key that fixes it; the client puts it in its
``QueryError``. This module makes no HTTP call and knows nothing of the pool.

>>> context = ssl_context(Tls())          # the system's trust store
>>> context.verify_mode == ssl.CERT_REQUIRED
True

Tested by tests/integration/test_tls.py.
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Mapping
from pathlib import Path

import truststore

from resumer.errors import ConfigError
from resumer.job.settings import Tls

log = logging.getLogger(__name__)

_CA_HINT = "trust your CA with [request.tls] ca_bundle (a PEM file), or set SSL_CERT_FILE"
_TEST_BOX_HINT = "or [request.tls] verify = false on a test box"


def ssl_context(
    tls: Tls,
    environ: Mapping[str, str] | None = None,
    origin: str = "the job file",
    *,
    warn: bool = True,
) -> ssl.SSLContext:
    """The context every connection of a run uses; ``ConfigError`` naming the key (or
    the variable) when a certificate file cannot be used. ``warn``: say so when
    ``verify = false`` (False to check the settings only).

    Built once per run: each context costs about 20 ms and 1 MB.
    """
    environ = os.environ if environ is None else environ
    context: ssl.SSLContext
    if not tls.verify:
        if warn:
            log.warning(
                "[request.tls] verify = false: server certificates are not checked; anyone "
                "on the way can read and change the answers (%s)",
                origin,
            )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif tls.ca_bundle is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        _load_cas(context, "[request.tls] ca_bundle", origin, cafile=tls.ca_bundle)
    else:
        context = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        for name, kind in (("SSL_CERT_FILE", "cafile"), ("SSL_CERT_DIR", "capath")):
            if environ.get(name):
                _load_cas(context, f"{name}={environ[name]}", origin, **{kind: environ[name]})
    if tls.client_cert is not None:
        _load_client_cert(context, tls.client_cert, tls.client_key, origin)
    return context


def _load_cas(context: ssl.SSLContext, what: str, origin: str, **where: str | Path) -> None:
    try:
        context.load_verify_locations(**where)  # type: ignore[arg-type]
    except FileNotFoundError:
        raise ConfigError(f"{origin}: {what}: no such file or folder") from None
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "reason", None) or exc.strerror or exc
        raise ConfigError(f"{origin}: {what}: not a file of PEM certificates ({reason})") from None


def _refuse_password() -> str:
    """OpenSSL's password callback: an encrypted key is refused, never prompted for."""
    raise ConfigError("encrypted")


def _load_client_cert(context: ssl.SSLContext, cert: Path, key: Path | None, origin: str) -> None:
    try:
        context.load_cert_chain(cert, key, password=_refuse_password)
    except ConfigError:
        raise ConfigError(
            f"{origin}: [request.tls] client_key: the key is encrypted with a password; "
            "give an unencrypted copy (openssl pkey -in KEY -out KEY.plain)"
        ) from None
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
        which = "client_cert and client_key" if key is not None else "client_cert"
        raise ConfigError(
            f"{origin}: [request.tls] {which}: cannot use them as a PEM certificate and its "
            f"key ({reason}); a client_cert without its key needs client_key"
        ) from None


def tls_problem(error: BaseException) -> str | None:
    """One line saying what failed in a TLS handshake and the key that fixes it, or None
    when ``error`` (or what caused it) is no TLS failure."""
    for cause in _causes(error):
        if isinstance(cause, ssl.SSLCertVerificationError):
            reason = cause.verify_message or cause.reason or "the certificate was refused"
            return f"certificate verify failed: {reason} — {_verify_fix(cause)}"
        if isinstance(cause, ssl.SSLError) and not isinstance(cause, ssl.SSLEOFError):
            return _handshake_problem(cause)
    return None


def _verify_fix(error: ssl.SSLCertVerificationError) -> str:
    message = (error.verify_message or "").lower()
    if "hostname mismatch" in message or "ip address mismatch" in message:
        return f"use the host name the certificate was issued for in the URL, {_TEST_BOX_HINT}"
    if "expired" in message or "not yet valid" in message:
        return f"the server's certificate must be renewed, {_TEST_BOX_HINT}"
    return _CA_HINT


def _handshake_problem(error: ssl.SSLError) -> str | None:
    reason = (error.reason or str(error)).upper()
    text = (error.reason or str(error)).lower().replace("_", " ")
    if "CERTIFICATE_REQUIRED" in reason or "HANDSHAKE_FAILURE" in reason:
        return (
            f"TLS handshake failed ({text}): the server may want a client certificate — "
            "give it with [request.tls] client_cert and client_key"
        )
    if "BAD_CERTIFICATE" in reason or "UNKNOWN_CA" in reason or "CERTIFICATE_UNKNOWN" in reason:
        return (
            f"TLS handshake failed ({text}): the server refused the client certificate — "
            "check [request.tls] client_cert (one its CA signed) and client_key"
        )
    if "WRONG_VERSION_NUMBER" in reason:
        return f"TLS handshake failed ({text}): the server does not speak TLS there — try http://"
    return None  # an EOF or a reset mid-handshake: the network's, worth a retry


def _causes(error: BaseException) -> list[BaseException]:
    """``error`` and the exceptions behind it (httpx wraps httpcore wraps ssl)."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain
