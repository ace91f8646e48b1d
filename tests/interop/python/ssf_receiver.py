"""An OpenID Shared Signals (SSF 1.0) receiver written from the specifications, independent of
Tessera's code, so that Tessera's transmitter is checked by someone who only read the specs.

usage:
  ssf_receiver.py poll ISSUER CLIENT_ID CLIENT_SECRET [options]
  ssf_receiver.py push ISSUER CLIENT_ID CLIENT_SECRET [options]
  ssf_receiver.py --self-test [NAME]   runs the built-in cases (those whose name holds NAME)

  ISSUER              the transmitter's issuer, exactly as it is in its metadata
  CLIENT_ID/SECRET    a client allowed the client_credentials grant with `ssf.manage ssf.read`

options:
  --events E [E ...]  event types to request: full URIs or the short names session-revoked,
                      credential-change, token-claims-change, account-disabled, account-enabled,
                      account-purged, account-credential-change-required, identifier-changed
                      (default: session-revoked credential-change account-disabled account-enabled)
  --expect N          exit 0 once N valid SETs have been received (verification events do not count)
  --timeout S         exit non-zero when that has not happened S seconds after start (default 30)
  --verify            also trigger a verification event with a random `state` and wait for it
  --max-events M      poll only: `maxEvents` of each poll request (default 100)
  --fail-first N      push only: answer 503 to the first N authenticated deliveries
  --scope S           scope of the client_credentials request (default "ssf.manage ssf.read")
  --require-txn       refuse SETs without a `txn` claim (SSF 1.0 §4.1.9 says SHOULD)
  --delete-stream     delete the stream before exiting successfully
  --verbose           log requests to stderr

What it does: reads the OpenID discovery document for the token endpoint, gets an access token
(client_credentials, HTTP Basic), reads and checks /.well-known/ssf-configuration, creates a stream
(on 409 it reads the existing one and PATCHes it), reads the stream's status, then receives SETs:
`poll` long-polls the transmitter-supplied endpoint (returnImmediately false) and acknowledges what
it validated; `push` serves http://127.0.0.1:PORT/events and requires the authorization_header it
registered. Every SET is validated (signature with the JWKS from `jwks_uri`, RS256 and a key of at
least 2048 bits, `typ` secevent+jwt, `iss`, `aud`, `iat`, `jti` unique, one event, no `sub`, no `exp`,
`sub_id` of a known format with exactly its members, the event's own members).

Output on stdout, one JSON object a line, flushed:
  {"ready": {"stream_id", "aud", "status", "endpoint", "reused"}}   once the stream exists; endpoint
                        is the poll URL or this receiver's push URL, reused is true after a 409
  {"set": {"jti", "event_type", "subject", "event", "iss", "aud", "iat", "txn"}}  for each valid SET
                        (subject is the sub_id; txn only when present)
  {"verified": {"jti", "state"}}   when the verification event with our state came back
  {"done": {"received", "polls", "empty_polls"}}   on success (push: {"received", "deliveries"})
  {"error": "...", "kind": "validation|protocol|timeout", "err": RFC 8935 code, "jti": ...}
                        err and jti only for validation errors
Exit status: 0 success, 1 a SET failed validation (reported to the transmitter: setErrs when
polling, 400 with `err` when pushed), 2 usage, 3 the transmitter broke the protocol (metadata,
stream management, delivery), 4 timeout.

HTTP (not HTTPS) is accepted only for loopback hosts, so a test transmitter can run on
127.0.0.1; everywhere else SSF 1.0 §7.1 requires TLS. The receiver is deliberately stricter than
the specifications where a lenient receiver would hide a transmitter bug: each such choice is
marked "strict" below. Those that go beyond a MUST: `typ` exactly secevent+jwt, `aud` exactly the
stream's (as a set), an event type outside events_delivered refused, a jti seen twice refused,
session-revoked and credential-change need reason_admin (interop profile §3), credential_type from
CAEP's list only, spec_version exactly 1_0, both delivery methods advertised.

Needs Python 3.11 and PyJWT with cryptography (requirements.txt); nothing else.
"""
import argparse
import base64
import ipaddress
import json
import queue
import re
import secrets
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt

PUSH = "urn:ietf:rfc:8935"
POLL = "urn:ietf:rfc:8936"
OAUTH = "urn:ietf:rfc:6749"
SSF = "https://schemas.openid.net/secevent/ssf/event-type/"
CAEP = "https://schemas.openid.net/secevent/caep/event-type/"
RISC = "https://schemas.openid.net/secevent/risc/event-type/"
VERIFICATION = SSF + "verification"
STREAM_UPDATED = SSF + "stream-updated"
SHORT_NAMES = {
    "session-revoked": CAEP + "session-revoked",
    "credential-change": CAEP + "credential-change",
    "token-claims-change": CAEP + "token-claims-change",
    "account-disabled": RISC + "account-disabled",
    "account-enabled": RISC + "account-enabled",
    "account-purged": RISC + "account-purged",
    "account-credential-change-required": RISC + "account-credential-change-required",
    "identifier-changed": RISC + "identifier-changed",
}
DEFAULT_EVENTS = ["session-revoked", "credential-change", "account-disabled", "account-enabled"]

# Members of each subject identifier format: RFC 9493 §3.2.1-§3.2.8 and SSF 1.0 §3.5.1-§3.5.3.
# RFC 9493 §3: "A Subject Identifier MUST NOT contain any members prohibited or not described by
# its Identifier Format", so the sets are closed. `aliases` and `ip-addresses` hold arrays.
FORMAT_MEMBERS = {
    "account": ("uri",),
    "email": ("email",),
    "iss_sub": ("iss", "sub"),
    "opaque": ("id",),
    "phone_number": ("phone_number",),
    "did": ("url",),
    "uri": ("uri",),
    "aliases": ("identifiers",),
    "jwt_id": ("iss", "jti"),
    "saml_assertion_id": ("issuer", "assertion_id"),
    "ip-addresses": ("ip-addresses",),
}
# Member names of a complex subject that SSF 1.0 §3.3 lists; others are allowed there too.
COMPLEX_MEMBERS = {"user", "device", "session", "application", "tenant", "org_unit", "group"}
# CAEP 1.0 §2 and §3.3.1; RISC 1.0 §2.3.
INITIATING_ENTITIES = {"admin", "user", "policy", "system"}
CREDENTIAL_TYPES = {"password", "pin", "x509", "fido2-platform", "fido2-roaming", "fido-u2f",
                    "verifiable-credential", "phone-voice", "phone-sms", "app"}
CHANGE_TYPES = {"create", "revoke", "update", "delete"}
DISABLE_REASONS = {"hijacking", "bulk-account"}
STREAM_STATUSES = {"enabled", "paused", "disabled"}

EXIT_VALIDATION, EXIT_USAGE, EXIT_PROTOCOL, EXIT_TIMEOUT = 1, 2, 3, 4
VERBOSE = False


def emit(kind, value):
    print(json.dumps({kind: value}), flush=True)


def log(message):
    if VERBOSE:
        print(f"ssf_receiver: {message}", file=sys.stderr, flush=True)


class SetInvalid(Exception):
    """A SET the receiver refuses, with its RFC 8935 §2.4 error code (or SSF's invalid_state)."""

    def __init__(self, err, description):
        super().__init__(description)
        self.err = err
        self.description = description


class ProtocolError(Exception):
    """The transmitter answered something the specifications do not allow."""


class Failed(Exception):
    """Ends the run: carries the error line and the exit status."""

    def __init__(self, status, line):
        super().__init__(line["error"])
        self.status = status
        self.line = line


# ---------------------------------------------------------------------------------------------
# HTTP

def http(method, url, *, body=None, form=None, token=None, basic=None, headers=None, timeout=30.0):
    """One request; returns (status, headers, parsed JSON or raw bytes). Never raises on 4xx/5xx."""
    data, sent = None, {"Accept": "application/json"}
    if body is not None:
        data, sent["Content-Type"] = json.dumps(body).encode(), "application/json"
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        sent["Content-Type"] = "application/x-www-form-urlencoded"
    if token:
        sent["Authorization"] = f"Bearer {token}"
    if basic:
        # RFC 6749 §2.3.1: both parts form-urlencoded before the Basic encoding.
        pair = f"{urllib.parse.quote_plus(basic[0])}:{urllib.parse.quote_plus(basic[1])}"
        sent["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    sent.update(headers or {})
    request = urllib.request.Request(url, data=data, method=method, headers=sent)
    log(f"{method} {url} {body if body is not None else ''}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, answer, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, answer, raw = error.code, error.headers, error.read()
    except (urllib.error.URLError, OSError) as error:
        raise ProtocolError(f"{method} {url}: {getattr(error, 'reason', error)}") from error
    log(f"  -> {status} {raw[:300]!r}")
    media = (answer.get("Content-Type") or "").split(";")[0].strip().lower()
    if media == "application/json" and raw:
        try:
            return status, answer, json.loads(raw, object_pairs_hook=no_duplicates)
        except ValueError as error:
            raise ProtocolError(f"{method} {url}: the JSON body does not parse: {error}") from error
    return status, answer, raw


def expect_json(what, status, answer, value, *, want=200):
    if status != want:
        raise ProtocolError(f"{what}: HTTP {status}, expected {want}: {value!r:.300}")
    media = (answer.get("Content-Type") or "").split(";")[0].strip().lower()
    if media != "application/json":
        raise ProtocolError(f"{what}: Content-Type {media!r}, expected application/json")
    return value


def no_duplicates(pairs):
    """RFC 7519 §4: a JWT with duplicate claim names may be rejected; so is any JSON from the peer."""
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"duplicate member {key!r}")
        seen[key] = value
    return seen


def is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(what, value):
    """SSF 1.0 §7.1: endpoint URLs use HTTP over TLS; plain HTTP is allowed here for loopback only."""
    if not isinstance(value, str):
        raise ProtocolError(f"{what} is not a URL string: {value!r}")
    parts = urllib.parse.urlsplit(value)
    if not parts.hostname or parts.fragment:
        raise ProtocolError(f"{what} is not an absolute URL without fragment: {value!r}")
    if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback(parts.hostname)):
        raise ProtocolError(f"{what} must use https (http only on loopback): {value!r}")
    return value


def well_known(issuer, name):
    """SSF 1.0 §7.2: /.well-known/NAME goes between the host and the issuer's path, whose
    terminating "/" is removed first (https://tr.example.com/issuer1 -> /.well-known/NAME/issuer1)."""
    parts = urllib.parse.urlsplit(issuer)
    path = parts.path.rstrip("/")
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, f"/.well-known/{name}{path}", "", ""))


# ---------------------------------------------------------------------------------------------
# Discovery, token, metadata

class Receiver:
    def __init__(self, args):
        self.args = args
        self.issuer = args.issuer
        self.deadline = time.monotonic() + args.timeout
        self.token = None
        self.token_endpoint = None
        self.metadata = None
        self.jwks = {}
        self.stream = None
        self.seen = set()
        self.lock = threading.Lock()
        self.state = None
        self.verified = not args.verify
        self.received = 0

    def remaining(self):
        return self.deadline - time.monotonic()

    def fetch_token(self):
        if self.token_endpoint is None:
            # OpenID Connect Discovery 1.0 §4: the document is at ISSUER/.well-known/openid-configuration.
            url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
            status, answer, doc = http("GET", url)
            expect_json("OpenID discovery", status, answer, doc)
            if doc.get("issuer") != self.issuer:
                raise ProtocolError(f"OpenID discovery issuer {doc.get('issuer')!r} is not {self.issuer!r}")
            self.token_endpoint = check_url("token_endpoint", doc.get("token_endpoint"))
        status, answer, body = http(
            "POST", self.token_endpoint,
            form={"grant_type": "client_credentials", "scope": self.args.scope},
            basic=(self.args.client_id, self.args.client_secret))
        expect_json("token request", status, answer, body)
        bearer = str(body.get("token_type", "")).lower() == "bearer"
        if not isinstance(body.get("access_token"), str) or not bearer:
            raise ProtocolError(f"token response without a Bearer access_token: {body!r}")
        self.token = body["access_token"]

    def call(self, method, url, **kwargs):
        """A management or poll request with the access token; fetches a new token once on 401."""
        if self.token is None:
            self.fetch_token()
        result = http(method, url, token=self.token, **kwargs)
        if result[0] == 401:
            self.fetch_token()
            result = http(method, url, token=self.token, **kwargs)
        return result

    def read_metadata(self):
        """SSF 1.0 §7.1, §7.2.3 and §7.2.4, plus the CAEP Interoperability Profile §2.3."""
        status, answer, meta = http("GET", well_known(self.issuer, "ssf-configuration"))
        expect_json("SSF configuration", status, answer, meta)
        if not isinstance(meta, dict):
            raise ProtocolError("the SSF configuration is not a JSON object")
        if meta.get("issuer") != self.issuer:  # §7.2.4: identical to the URL we used
            raise ProtocolError(f"SSF configuration issuer {meta.get('issuer')!r} is not {self.issuer!r}")
        if meta.get("spec_version") != "1_0":  # §7.1, interop profile §2.3.1
            raise ProtocolError(f"spec_version is {meta.get('spec_version')!r}, expected '1_0'")
        for name in ("jwks_uri", "configuration_endpoint", "status_endpoint", "verification_endpoint"):
            if name not in meta:  # interop profile §2.3.3-§2.3.6
                raise ProtocolError(f"the SSF configuration has no {name}")
            check_url(name, meta[name])
        for name in ("add_subject_endpoint", "remove_subject_endpoint"):
            if name in meta:
                check_url(name, meta[name])
        methods = meta.get("delivery_methods_supported")
        if not isinstance(methods, list) or not {PUSH, POLL} <= set(methods):  # interop §2.3.2, §2.3.8.1
            raise ProtocolError(f"delivery_methods_supported must list {PUSH} and {POLL}: {methods!r}")
        schemes = meta.get("authorization_schemes")
        if not isinstance(schemes, list) or not all(
                isinstance(s, dict) and isinstance(s.get("spec_urn"), str) for s in schemes):
            raise ProtocolError(f"authorization_schemes must be objects with spec_urn: {schemes!r}")
        if not any(s["spec_urn"] == OAUTH for s in schemes):  # interop profile §2.3.7
            raise ProtocolError(f"authorization_schemes lacks {{'spec_urn': '{OAUTH}'}}")
        if "default_subjects" in meta and meta["default_subjects"] not in ("ALL", "NONE"):
            raise ProtocolError(f"default_subjects must be ALL or NONE: {meta['default_subjects']!r}")
        critical = meta.get("critical_subject_members", [])
        if not isinstance(critical, list) or not all(isinstance(c, str) for c in critical):
            raise ProtocolError(f"critical_subject_members is not an array of strings: {critical!r}")
        for name, value in meta.items():
            if isinstance(value, list) and not value:  # §7.2.3: "Claims with zero elements MUST be omitted"
                raise ProtocolError(f"{name} is an empty array; §7.2.3 says to omit it")
        self.metadata = meta

    def load_jwks(self):
        status, answer, doc = http("GET", self.metadata["jwks_uri"])
        expect_json("JWKS", status, answer, doc)
        keys = {}
        for entry in doc.get("keys", []) if isinstance(doc, dict) else []:
            if entry.get("kty") != "RSA" or entry.get("use", "sig") != "sig":
                continue
            try:
                key = jwt.PyJWK(entry, algorithm="RS256")
            except jwt.PyJWTError as error:
                raise ProtocolError(f"a JWKS key does not load: {error}") from error
            keys[entry.get("kid")] = key
        if not keys:
            raise ProtocolError("the JWKS has no RSA signing key")
        self.jwks = keys

    # -----------------------------------------------------------------------------------------
    # Stream management (SSF 1.0 §8.1.1)

    def create_stream(self, delivery):
        events = [SHORT_NAMES.get(e, e) for e in self.args.events]
        request = {"delivery": delivery, "events_requested": events,
                   "description": f"ssf_receiver.py {self.args.mode} (Tessera interop test)"}
        endpoint = self.metadata["configuration_endpoint"]
        status, answer, config = self.call("POST", endpoint, body=request)
        reused = False
        if status == 409:
            # §8.1.1.1: one stream per receiver; read it and update it to what this run needs.
            status, answer, listing = self.call("GET", endpoint)
            expect_json("read streams after 409", status, answer, listing)
            if not isinstance(listing, list) or not listing:
                raise ProtocolError(f"409 on create, but GET lists no stream: {listing!r}")
            patch = dict(request, stream_id=listing[0].get("stream_id"))
            status, answer, config = self.call("PATCH", endpoint, body=patch)
            expect_json("update stream", status, answer, config)
            reused = True
        else:
            expect_json("create stream", status, answer, config, want=201)
        self.stream = self.check_stream(config, delivery, events)
        self.stream["reused"] = reused
        # §8.1.1.2: the stream reads back the same, and only this receiver's streams are listed.
        status, answer, again = self.call("GET", endpoint + "?" + urllib.parse.urlencode(
            {"stream_id": self.stream["stream_id"]}))
        expect_json("read stream", status, answer, again)
        if not isinstance(again, dict) or again.get("stream_id") != self.stream["stream_id"]:
            raise ProtocolError(f"reading the stream by stream_id returned {again!r:.300}")
        status, answer, listing = self.call("GET", endpoint)
        expect_json("list streams", status, answer, listing)
        if not isinstance(listing, list) or self.stream["stream_id"] not in [
                s.get("stream_id") for s in listing if isinstance(s, dict)]:
            raise ProtocolError("GET without stream_id does not list the new stream")

    def check_stream(self, config, delivery, events):
        if not isinstance(config, dict):
            raise ProtocolError(f"the stream configuration is not an object: {config!r:.300}")
        stream_id = config.get("stream_id")
        if not isinstance(stream_id, str) or not stream_id:
            raise ProtocolError(f"stream_id missing: {config!r:.300}")
        if config.get("iss") != self.issuer:  # §8.1.1.1: "MUST check ... iss"
            raise ProtocolError(f"stream iss {config.get('iss')!r} is not {self.issuer!r}")
        aud = config.get("aud")
        auds = [aud] if isinstance(aud, str) else aud
        if not isinstance(auds, list) or not auds or not all(isinstance(a, str) and a for a in auds):
            raise ProtocolError(f"stream aud must be a string or strings: {aud!r}")
        got = config.get("delivery")
        if not isinstance(got, dict) or got.get("method") != delivery["method"]:
            raise ProtocolError(f"stream delivery {got!r} does not use {delivery['method']}")
        if delivery["method"] == POLL:  # §6.1.2: the transmitter supplies the poll URL
            check_url("delivery.endpoint_url", got.get("endpoint_url"))
        elif got.get("endpoint_url") != delivery["endpoint_url"]:
            raise ProtocolError(f"push endpoint_url changed to {got.get('endpoint_url')!r}")
        delivered = config.get("events_delivered")
        if not isinstance(delivered, list) or not all(isinstance(e, str) for e in delivered):
            raise ProtocolError(f"events_delivered (REQUIRED) is not an array of URIs: {delivered!r}")
        supported = config.get("events_supported")
        if supported is not None and not set(delivered) <= set(supported):
            raise ProtocolError("events_delivered is not a subset of events_supported")
        if not set(delivered) <= set(events):  # §8.1.1: a subset of supported ∩ requested
            raise ProtocolError(f"events_delivered {delivered} holds events that were not requested")
        for name in ("min_verification_interval", "inactivity_timeout"):
            value = config.get(name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise ProtocolError(f"{name} must be a non-negative integer: {value!r}")
        return {"stream_id": stream_id, "aud": set(auds), "aud_claim": aud, "delivery": got,
                "events_delivered": set(delivered)}

    def read_status(self):
        """SSF 1.0 §8.1.2.1."""
        url = self.metadata["status_endpoint"] + "?" + urllib.parse.urlencode(
            {"stream_id": self.stream["stream_id"]})
        status, answer, body = self.call("GET", url)
        expect_json("read stream status", status, answer, body)
        if not isinstance(body, dict) or body.get("stream_id") != self.stream["stream_id"] \
                or body.get("status") not in STREAM_STATUSES:
            raise ProtocolError(f"stream status answer is malformed: {body!r:.300}")
        return body["status"]

    def trigger_verification(self):
        """SSF 1.0 §8.1.4.2: POST {stream_id, state}; 204 No Content."""
        self.state = secrets.token_urlsafe(16)
        status, _, body = self.call("POST", self.metadata["verification_endpoint"],
                                    body={"stream_id": self.stream["stream_id"], "state": self.state})
        if status != 204:
            raise ProtocolError(f"verification request: HTTP {status}, expected 204: {body!r:.300}")

    def delete_stream(self):
        """SSF 1.0 §8.1.1.5: DELETE ?stream_id=...; 204."""
        url = self.metadata["configuration_endpoint"] + "?" + urllib.parse.urlencode(
            {"stream_id": self.stream["stream_id"]})
        status, _, body = self.call("DELETE", url)
        if status != 204:
            raise ProtocolError(f"delete stream: HTTP {status}, expected 204: {body!r:.300}")

    # -----------------------------------------------------------------------------------------
    # SET validation

    def validate(self, token, *, jti_key=None):
        """Validates one SET; returns the line to print. Raises SetInvalid with an RFC 8935 code."""
        if not isinstance(token, str):
            raise SetInvalid("invalid_request", "the SET is not a string")
        parts = token.split(".")
        if len(parts) != 3:
            raise SetInvalid("invalid_request", f"a compact JWS has 3 parts, this has {len(parts)}")
        try:
            header = json.loads(b64url(parts[0]), object_pairs_hook=no_duplicates)
            claims = json.loads(b64url(parts[1]), object_pairs_hook=no_duplicates)
        except ValueError as error:
            raise SetInvalid("invalid_request", f"header or claims do not parse: {error}") from error
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise SetInvalid("invalid_request", "header and claims must be JSON objects")
        if header.get("typ") != "secevent+jwt":  # SSF 1.0 §4.1.1 (strict: not application/secevent+jwt)
            raise SetInvalid("invalid_request", f"header typ is {header.get('typ')!r}, not 'secevent+jwt'")
        if header.get("alg") != "RS256":  # interop profile §2.6
            raise SetInvalid("invalid_key", f"alg is {header.get('alg')!r}, not RS256")
        if "crit" in header:
            raise SetInvalid("invalid_request", "header has crit, which this receiver does not understand")
        self.verify_signature(token, header.get("kid"))
        self.check_envelope(claims, jti_key)
        event_type, event = self.check_events(claims)
        subject = claims["sub_id"]
        check_subject(subject, "sub_id", set(self.metadata.get("critical_subject_members", [])))
        self.check_event(event_type, event, subject)
        line = {"jti": claims["jti"], "event_type": event_type, "subject": subject, "event": event,
                "iss": claims["iss"], "aud": claims["aud"], "iat": claims["iat"]}
        if "txn" in claims:
            line["txn"] = claims["txn"]
        return line

    def verify_signature(self, token, kid):
        def candidates():
            return [self.jwks[kid]] if kid in self.jwks else (
                list(self.jwks.values()) if kid is None else [])
        keys = candidates()
        if not keys:  # a key this receiver has not seen: the transmitter may have rotated
            self.load_jwks()
            keys = candidates()
        if not keys:
            raise SetInvalid("invalid_key", f"no key with kid {kid!r} in the JWKS")
        for key in keys:
            if key.key.key_size < 2048:  # interop profile §2.6
                raise SetInvalid("invalid_key", f"the key has {key.key.key_size} bits, fewer than 2048")
            try:
                jwt.decode(token, key.key, algorithms=["RS256"], options={
                    "verify_signature": True, "verify_exp": False, "verify_nbf": False,
                    "verify_iat": False, "verify_aud": False, "verify_iss": False,
                    "verify_sub": False, "verify_jti": False})
                return
            except jwt.InvalidSignatureError:
                continue
            except jwt.PyJWTError as error:
                raise SetInvalid("invalid_request", f"the JWS does not decode: {error}") from error
        raise SetInvalid("invalid_key", "the signature does not verify with the transmitter's JWKS")

    def check_envelope(self, claims, jti_key):
        """RFC 8417 §2.2 claims as SSF 1.0 §4.1 profiles them."""
        if claims.get("iss") != self.issuer:  # SSF 1.0 §4.1.6
            raise SetInvalid("invalid_issuer", f"iss is {claims.get('iss')!r}, not {self.issuer!r}")
        aud = claims.get("aud")
        auds = {aud} if isinstance(aud, str) else set(aud) if isinstance(aud, list) and all(
            isinstance(a, str) for a in aud) else None
        if auds != self.stream["aud"]:
            # Strict: the SET's audience is exactly the stream's, so no SET names another receiver.
            raise SetInvalid("invalid_audience",
                             f"aud is {aud!r}, the stream's is {self.stream['aud_claim']!r}")
        iat = claims.get("iat")
        if not isinstance(iat, (int, float)) or isinstance(iat, bool) or iat <= 0:
            raise SetInvalid("invalid_request", f"iat (REQUIRED, a NumericDate) is {iat!r}")
        if iat > time.time() + 300:
            raise SetInvalid("invalid_request", f"iat {iat} is in the future")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise SetInvalid("invalid_request", "jti (REQUIRED) is missing or not a string")
        if jti_key is not None and jti_key != jti:  # RFC 8936 §2.3: keys of "sets" are the jtis
            raise SetInvalid("invalid_request", f"delivered under key {jti_key!r} but its jti is {jti!r}")
        with self.lock:
            if jti in self.seen:
                raise SetInvalid("invalid_request", f"jti {jti!r} was already received and acknowledged")
        if "sub" in claims:  # SSF 1.0 §4.1.2
            raise SetInvalid("invalid_request", "the sub claim MUST NOT be present in an SSF SET")
        if "exp" in claims:  # SSF 1.0 §4.1.7
            raise SetInvalid("invalid_request", "the exp claim MUST NOT be used in SETs")
        if "txn" in claims and (not isinstance(claims["txn"], str) or not claims["txn"]):
            raise SetInvalid("invalid_request", f"txn must be a non-empty string: {claims['txn']!r}")
        if self.args.require_txn and "txn" not in claims:
            raise SetInvalid("invalid_request", "no txn claim (SSF 1.0 §4.1.9: Transmitters SHOULD set it)")
        if "sub_id" not in claims:  # SSF 1.0 §3.1: sub_id MUST describe the primary subject
            raise SetInvalid("invalid_request", "sub_id (REQUIRED in SSF) is missing")

    def check_events(self, claims):
        events = claims.get("events")
        if not isinstance(events, dict):
            raise SetInvalid("invalid_request", "events (REQUIRED) is not a JSON object")
        if len(events) != 1:  # interop profile §2.8.1 (SSF 1.0 §4.2.1 says SHOULD)
            raise SetInvalid("invalid_request", f"events holds {len(events)} events, exactly one is allowed")
        (event_type, event), = events.items()
        if ":" not in event_type:
            raise SetInvalid("invalid_request", f"event type {event_type!r} is not a URI")
        if not isinstance(event, dict):
            raise SetInvalid("invalid_request", f"the {event_type} event is not a JSON object")
        delivered = self.stream["events_delivered"] | {VERIFICATION, STREAM_UPDATED}
        if event_type not in delivered:
            # Strict: §8.1.1 says the receiver relies on events_delivered to know what it will get;
            # §8.1.4 and §8.1.5 let verification and stream-updated through regardless.
            raise SetInvalid("invalid_request", f"{event_type} is not in the stream's events_delivered")
        return event_type, event

    def check_event(self, event_type, event, subject):
        stream_id = self.stream["stream_id"]
        if event_type in (VERIFICATION, STREAM_UPDATED):
            # SSF 1.0 §8.1.4.1 and §8.1.5: sub_id is an opaque subject whose id is the stream_id.
            if subject != {"format": "opaque", "id": stream_id}:
                raise SetInvalid("invalid_request", f"{event_type}: sub_id must be opaque, id {stream_id!r}")
        if event_type == VERIFICATION:
            state = event.get("state")
            if state is not None and not isinstance(state, str):
                raise SetInvalid("invalid_request", "verification state is not a string")
            if state is not None and state != self.state:
                # SSF 1.0 §8.1.4.1 and §11: answered with err invalid_state.
                raise SetInvalid("invalid_state", f"verification state {state!r} is not the one requested")
        elif event_type == STREAM_UPDATED:
            if event.get("status") not in STREAM_STATUSES:
                raise SetInvalid("invalid_request", f"stream-updated status is {event.get('status')!r}")
            optional_string(event, "reason", event_type)
        elif event_type.startswith(CAEP):
            check_caep_common(event, event_type)
            if event_type == CAEP + "session-revoked" or event_type == CAEP + "credential-change":
                # CAEP Interoperability Profile §3.1 and §3.2: reason_admin populated, non-empty.
                if "reason_admin" not in event:
                    raise SetInvalid("invalid_request", f"{event_type} lacks reason_admin (interop §3)")
            if event_type == CAEP + "credential-change":  # CAEP 1.0 §3.3.1 (strict: no private types)
                if event.get("credential_type") not in CREDENTIAL_TYPES:
                    raise SetInvalid("invalid_request", f"credential_type {event.get('credential_type')!r}")
                if event.get("change_type") not in CHANGE_TYPES:
                    raise SetInvalid("invalid_request", f"change_type {event.get('change_type')!r}")
                for name in ("friendly_name", "x509_issuer", "x509_serial", "fido2_aaguid"):
                    optional_string(event, name, event_type)
            if event_type == CAEP + "token-claims-change" and not (
                    isinstance(event.get("claims"), dict) and event["claims"]):  # CAEP 1.0 §3.2.1
                raise SetInvalid("invalid_request", "token-claims-change needs a non-empty claims object")
        elif event_type == RISC + "account-disabled":  # RISC 1.0 §2.3
            if "reason" in event and event["reason"] not in DISABLE_REASONS:
                raise SetInvalid("invalid_request", f"account-disabled reason {event['reason']!r}")


def b64url(segment):
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def optional_string(event, name, event_type):
    if name in event and (not isinstance(event[name], str) or not event[name]):
        raise SetInvalid("invalid_request", f"{event_type}: {name} must be a non-empty string")


def check_caep_common(event, event_type):
    """CAEP 1.0 §2: event_timestamp, initiating_entity, reason_admin, reason_user."""
    stamp = event.get("event_timestamp")
    if stamp is not None and (not isinstance(stamp, (int, float)) or isinstance(stamp, bool)):
        raise SetInvalid("invalid_request", f"{event_type}: event_timestamp is not a number")
    if "initiating_entity" in event and event["initiating_entity"] not in INITIATING_ENTITIES:
        raise SetInvalid("invalid_request", f"{event_type}: initiating_entity {event['initiating_entity']!r}")
    for name in ("reason_admin", "reason_user"):
        if name not in event:
            continue
        reason = event[name]
        # One or more BCP 47 language tag -> message pairs.
        if not isinstance(reason, dict) or not reason or not all(
                isinstance(k, str) and re.fullmatch(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*", k)
                and isinstance(v, str) and v for k, v in reason.items()):
            raise SetInvalid("invalid_request", f"{event_type}: {name} must map language tags to messages")


def check_subject(subject, where, critical, *, inside=None):
    """A subject identifier (RFC 9493 §3), or a complex subject (SSF 1.0 §3.3) when inside is None."""
    if not isinstance(subject, dict) or not isinstance(subject.get("format"), str):
        raise SetInvalid("invalid_request", f"{where} is not a subject identifier with a format")
    fmt = subject["format"]
    if fmt == "complex":
        if inside is not None:
            raise SetInvalid("invalid_request", f"{where}: complex subjects do not nest (SSF 1.0 §3.3)")
        members = {k: v for k, v in subject.items() if k != "format"}
        if not members:
            raise SetInvalid("invalid_request", f"{where}: a complex subject needs one or more members")
        for name, value in members.items():
            if name in critical and name not in COMPLEX_MEMBERS:  # SSF 1.0 §3.6
                raise SetInvalid("invalid_request", f"{where}: critical member {name!r} is not understood")
            check_subject(value, f"{where}.{name}", critical, inside="complex")
        return
    if fmt not in FORMAT_MEMBERS:
        raise SetInvalid("invalid_request", f"{where}: unknown subject identifier format {fmt!r}")
    wanted = set(FORMAT_MEMBERS[fmt])
    present = set(subject) - {"format"}
    if present != wanted:
        raise SetInvalid("invalid_request", f"{where}: format {fmt} has exactly the members "
                                            f"{sorted(wanted)}, this one has {sorted(present)}")
    if fmt == "aliases":  # RFC 9493 §3.2.8: one or more identifiers, never nested aliases
        identifiers = subject["identifiers"]
        if not isinstance(identifiers, list) or not identifiers:
            raise SetInvalid("invalid_request", f"{where}: aliases needs a non-empty identifiers array")
        for i, item in enumerate(identifiers):
            if isinstance(item, dict) and item.get("format") == "aliases":
                raise SetInvalid("invalid_request", f"{where}: aliases must not be nested")
            check_subject(item, f"{where}.identifiers[{i}]", critical, inside="aliases")
        return
    if fmt == "ip-addresses":  # SSF 1.0 §3.5.3
        addresses = subject["ip-addresses"]
        if not isinstance(addresses, list) or not addresses:
            raise SetInvalid("invalid_request", f"{where}: ip-addresses needs a non-empty array")
        for address in addresses:
            try:
                ipaddress.ip_address(address)
            except (ValueError, TypeError) as error:
                raise SetInvalid("invalid_request", f"{where}: {address!r} is not an IP address") from error
        return
    for name in wanted:  # each member REQUIRED, a string, "MUST NOT be null or empty"
        if not isinstance(subject[name], str) or not subject[name]:
            raise SetInvalid("invalid_request", f"{where}: {fmt}.{name} must be a non-empty string")
    rules = {"account": (subject.get("uri", "").startswith("acct:"), "uri must be an acct: URI"),
             "email": ("@" in subject.get("email", ""), "email must be an addr-spec"),
             "phone_number": (bool(re.fullmatch(r"\+[0-9]{2,15}", subject.get("phone_number", ""))),
                              "phone_number must be E.164 (+ and digits)"),
             "did": (subject.get("url", "").startswith("did:"), "url must be a DID URL"),
             "uri": (bool(re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", subject.get("uri", ""))),
                     "uri must be an absolute URI")}
    if fmt in rules and not rules[fmt][0]:
        raise SetInvalid("invalid_request", f"{where}: {rules[fmt][1]}")


# ---------------------------------------------------------------------------------------------
# Delivery

def setup(receiver, delivery):
    receiver.read_metadata()
    receiver.load_jwks()
    receiver.create_stream(delivery)
    return receiver.read_status()


def count(receiver, line):
    """Records a valid SET; returns True once the run has everything it waits for."""
    if line["event_type"] == VERIFICATION:
        state = line["event"].get("state")
        if state is not None and state == receiver.state:
            receiver.verified = True
            emit("verified", {"jti": line["jti"], "state": state})
        else:
            emit("set", line)
    else:
        receiver.received += 1
        emit("set", line)
    return receiver.received >= receiver.args.expect and receiver.verified


def set_failure(error, jti):
    return Failed(EXIT_VALIDATION, {"error": error.description, "kind": "validation", "err": error.err,
                                    "jti": jti})


def run_poll(receiver):
    """RFC 8936 poll delivery as SSF 1.0 §6.1.2 profiles it."""
    delivery = {"method": POLL}
    status = setup(receiver, delivery)
    url = receiver.stream["delivery"]["endpoint_url"]
    emit("ready", {"stream_id": receiver.stream["stream_id"], "aud": receiver.stream["aud_claim"],
                   "status": status, "endpoint": url, "reused": receiver.stream["reused"]})
    if receiver.args.verify:
        receiver.trigger_verification()
    acks, polls, empty_polls = [], 0, 0
    done = receiver.args.expect == 0 and receiver.verified
    while not done:
        if receiver.remaining() <= 0:
            raise timeout(receiver)
        request = {"returnImmediately": False, "maxEvents": receiver.args.max_events}
        if acks:
            request["ack"] = acks
        try:
            wait = max(receiver.remaining(), 0.1) + 0.25
            code, answer, body = receiver.call("POST", url, body=request, timeout=wait)
        except ProtocolError:
            if receiver.remaining() <= 0:
                raise timeout(receiver) from None
            raise
        polls += 1
        expect_json("poll", code, answer, body)
        acks = []
        if not isinstance(body, dict) or not isinstance(body.get("sets"), dict):
            raise ProtocolError(f"poll response without a sets object: {body!r:.300}")  # RFC 8936 §2.3
        more = body.get("moreAvailable", False)
        if not isinstance(more, bool):
            raise ProtocolError(f"moreAvailable is not a boolean: {more!r}")
        sets = body["sets"]
        if len(sets) > receiver.args.max_events:  # RFC 8936 §2.2: SHOULD NOT send more
            raise ProtocolError(f"{len(sets)} SETs returned for maxEvents {receiver.args.max_events}")
        if not sets:
            empty_polls += 1
            time.sleep(0.05)  # never a hot loop, even against a transmitter that does not wait
        for jti, token in sets.items():
            try:
                line = receiver.validate(token, jti_key=jti)
            except SetInvalid as error:
                # RFC 8936 §2.4.4: report it with setErrs (acknowledging what was valid), then stop.
                report = {"returnImmediately": True, "maxEvents": 0,
                          "setErrs": {jti: {"err": error.err, "description": error.description}}}
                if acks:
                    report["ack"] = acks
                try:
                    receiver.call("POST", url, body=report)
                except ProtocolError as report_error:
                    log(f"reporting setErrs failed: {report_error}")
                raise set_failure(error, jti) from None
            receiver.seen.add(jti)
            acks.append(jti)
            done = count(receiver, line) or done
    if acks:  # RFC 8936 §2.4.2: an acknowledge-only request for the last batch
        final = {"ack": acks, "maxEvents": 0, "returnImmediately": True}
        code, answer, body = receiver.call("POST", url, body=final)
        expect_json("acknowledge-only poll", code, answer, body)
    return {"received": receiver.received, "polls": polls, "empty_polls": empty_polls}


def timeout(receiver):
    waiting = f"{receiver.received} of {receiver.args.expect} SETs"
    if not receiver.verified:
        waiting += " and no verification event with our state"
    return Failed(EXIT_TIMEOUT, {"error": f"timeout after {receiver.args.timeout}s: {waiting}",
                                 "kind": "timeout"})


def run_push(receiver):
    """RFC 8935 push delivery as SSF 1.0 §6.1.1 profiles it: a server on loopback."""
    authorization = "Bearer " + secrets.token_urlsafe(24)
    outcomes = queue.Queue()
    ready = threading.Event()
    deliveries = {"authenticated": 0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            log("push: " + (args[0] % args[1:]))

        def answer(self, code, body=None):
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(code)
            if body is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def refuse(self, err, description, jti=None):
            # RFC 8935 §2.3: 400 with {"err", "description"}.
            self.answer(400, {"err": err, "description": description})
            outcomes.put(set_failure(SetInvalid(err, description), jti))

        def do_POST(self):
            try:
                self.deliver()
            except Exception as error:  # noqa: BLE001 - whatever broke ends the run, not the thread
                self.answer(500)
                outcomes.put(Failed(EXIT_PROTOCOL, {"error": f"push delivery: {error}", "kind": "protocol"}))

        def deliver(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(min(length, 1 << 16))
            if self.path != "/events":
                return self.answer(404)
            ready.wait(10)  # a SET may come before the create-stream answer has been read
            if self.headers.get("Authorization") != authorization:  # SSF 1.0 §6.1.1
                return self.refuse("authentication_failed", "the stream's authorization_header was not sent")
            with receiver.lock:
                deliveries["authenticated"] += 1
                failing = deliveries["authenticated"] <= receiver.args.fail_first
            if failing:
                return self.answer(503)
            media = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if media != "application/secevent+jwt":  # RFC 8935 §2.1
                return self.refuse("invalid_request", f"Content-Type {media!r}, not application/secevent+jwt")
            if "application/json" not in (self.headers.get("Accept") or ""):  # RFC 8935 §2.1
                return self.refuse("invalid_request", "the Accept header must be application/json")
            token = raw.decode("ascii", "replace").strip()
            try:
                line = receiver.validate(token)
            except SetInvalid as error:
                return self.refuse(error.err, error.description, unverified_jti(token))
            with receiver.lock:
                if line["jti"] in receiver.seen:
                    return self.refuse("invalid_request", f"jti {line['jti']!r} was already accepted")
                receiver.seen.add(line["jti"])
            self.answer(202)  # RFC 8935 §2.2: 202 Accepted, empty body
            outcomes.put(line)

        def do_GET(self):
            self.answer(405)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}/events"
    try:
        delivery = {"method": PUSH, "endpoint_url": endpoint, "authorization_header": authorization}
        status = setup(receiver, delivery)
        ready.set()
        emit("ready", {"stream_id": receiver.stream["stream_id"], "aud": receiver.stream["aud_claim"],
                       "status": status, "endpoint": endpoint, "reused": receiver.stream["reused"]})
        if receiver.args.verify:
            receiver.trigger_verification()
        done = receiver.args.expect == 0 and receiver.verified
        while not done:
            try:
                outcome = outcomes.get(timeout=max(receiver.remaining(), 0.01))
            except queue.Empty:
                raise timeout(receiver) from None
            if isinstance(outcome, Failed):
                raise outcome
            done = count(receiver, outcome)
        return {"received": receiver.received, "deliveries": deliveries["authenticated"]}
    finally:
        ready.set()
        server.shutdown()


def unverified_jti(token):
    try:
        return json.loads(b64url(token.split(".")[1])).get("jti")
    except (ValueError, IndexError, AttributeError):
        return None


# ---------------------------------------------------------------------------------------------
# --self-test: a TEST DOUBLE of a transmitter, and the cases that must pass or fail against it.
# It exists only to show that this receiver accepts what the specs allow and refuses the rest;
# nothing in it is a reference for Tessera.

class FakeTransmitter:
    """TEST DOUBLE: just enough of an SSF transmitter (one client, in memory) for --self-test."""

    def __init__(self, keys, *, meta=None, sets=(), later=(), mutate=None, one_stream=False,
                 push_auth=True, verify_state=None):
        self.keys, self.mutate, self.one_stream, self.push_auth = keys, mutate, one_stream, push_auth
        self.sets, self.later, self.verify_state = list(sets), list(later), verify_state
        self.cond, self.pending, self.streams, self.tokens = threading.Condition(), [], {}, set()
        self.acks, self.set_errs, self.polls, self.pushes = [], {}, [], []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler())
        self.server.handle_error = lambda *_: None  # a receiver that has exited closes long polls
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        base = self.issuer
        self.meta = {"spec_version": "1_0", "issuer": base, "jwks_uri": base + "/jwks",
                     "delivery_methods_supported": [PUSH, POLL],
                     "configuration_endpoint": base + "/ssf/stream", "status_endpoint": base + "/ssf/status",
                     "verification_endpoint": base + "/ssf/verify",
                     "authorization_schemes": [{"spec_urn": OAUTH}], "default_subjects": "ALL"}
        self.meta.update(meta or {})
        self.meta = {k: v for k, v in self.meta.items() if v is not None}
        if one_stream:
            self.create({"delivery": {"method": POLL}, "events_requested": [CAEP + "session-revoked"]})
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def sign(self, event_type, event, subject, stream):
        claims = {"iss": self.issuer, "aud": stream["aud"], "iat": int(time.time()),
                  "jti": secrets.token_hex(8), "txn": secrets.token_hex(4), "sub_id": subject,
                  "events": {event_type: event}}
        # A copy, so that mutations stay in this SET; subjects name this fake as "ISSUER".
        claims = json.loads(json.dumps(claims).replace('"ISSUER"', json.dumps(self.issuer)))
        header, key, alg = {"kid": "k1", "typ": "secevent+jwt"}, self.keys[0], "RS256"
        if self.mutate and event_type != VERIFICATION:
            header, claims, key, alg = self.mutate(header, claims, self.keys, stream)
        return claims["jti"], jwt.encode(claims, key, algorithm=alg, headers=header)

    def enqueue(self, stream, event_type, event, subject=None):
        subject = subject or {"format": "opaque", "id": stream["stream_id"]}
        with self.cond:
            self.pending.append(self.sign(event_type, event, subject, stream))
            self.cond.notify_all()

    def create(self, request):
        sid = secrets.token_hex(8)
        delivery = dict(request.get("delivery") or {"method": POLL})
        if delivery["method"] == POLL:
            delivery["endpoint_url"] = f"{self.issuer}/ssf/poll/{sid}"
        wanted = [e for e in request.get("events_requested", []) if e != CAEP + "token-claims-change"]
        stream = {"stream_id": sid, "iss": self.issuer, "aud": "client", "delivery": delivery,
                  "events_supported": list(SHORT_NAMES.values()), "events_requested": request.get(
                      "events_requested", []), "events_delivered": wanted, "min_verification_interval": 0}
        self.streams[sid] = stream
        return stream

    def start(self, stream):
        for item in self.sets:
            self.enqueue(stream, *item)
        def later():
            time.sleep(0.8)  # after the receiver's long poll has started waiting
            for item in self.later:
                self.enqueue(stream, *item)
        threading.Thread(target=later, daemon=True).start()
        if stream["delivery"]["method"] == PUSH:
            threading.Thread(target=self.push_loop, args=(stream,), daemon=True).start()

    def push_loop(self, stream):
        while True:
            with self.cond:
                while not self.pending:
                    self.cond.wait()
                jti, token = self.pending[0]
            headers = {"Content-Type": "application/secevent+jwt", "Accept": "application/json"}
            if self.push_auth:
                headers["Authorization"] = stream["delivery"]["authorization_header"]
            request = urllib.request.Request(stream["delivery"]["endpoint_url"], token.encode(), headers)
            try:
                with urllib.request.urlopen(request, timeout=5) as answer:
                    status, body = answer.status, answer.read()
            except urllib.error.HTTPError as error:
                status, body = error.code, error.read()
            except OSError:
                return  # the receiver has gone
            self.pushes.append((status, body, headers.get("Authorization")))
            with self.cond:
                if status < 500:  # RFC 8935 §4: retrying a 400 would not help; a 5xx is retried
                    self.pending.pop(0)
            time.sleep(0.05)

    def poll(self, sid, request):
        self.polls.append(request)
        with self.cond:
            self.acks += request.get("ack", [])
            self.set_errs.update(request.get("setErrs", {}))
            acked = set(self.acks) | set(self.set_errs)
            self.pending = [p for p in self.pending if p[0] not in acked]
            if request.get("maxEvents") == 0:
                return {"sets": {}}
            if not request.get("returnImmediately"):
                self.cond.wait_for(lambda: self.pending, timeout=2)
            batch = self.pending[:request.get("maxEvents", 100)]
            return {"sets": dict(batch), "moreAvailable": len(self.pending) > len(batch)}

    def handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def send(self, code, body=None):
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def route(self, method):
                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if url.path == "/.well-known/openid-configuration":
                    return self.send(200, {"issuer": fake.issuer, "token_endpoint": fake.issuer + "/token"})
                if url.path == "/.well-known/ssf-configuration":
                    return self.send(200, fake.meta)
                if url.path == "/jwks":
                    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(fake.keys[0].public_key()))
                    return self.send(200, {"keys": [dict(jwk, kid="k1", use="sig", alg="RS256")]})
                if url.path == "/token":
                    form = dict(urllib.parse.parse_qsl(raw.decode()))
                    basic = "Basic " + base64.b64encode(b"client:secret").decode()
                    grant = form.get("grant_type") == "client_credentials"
                    if self.headers.get("Authorization") != basic or not grant:
                        return self.send(401, {"error": "invalid_client"})
                    fake.tokens.add(token := secrets.token_hex(8))
                    return self.send(200, {"access_token": token, "token_type": "Bearer", "expires_in": 300})
                if self.headers.get("Authorization", "")[7:] not in fake.tokens:
                    return self.send(401)
                body = json.loads(raw) if raw else {}
                stream = fake.streams.get(query.get("stream_id") or body.get("stream_id"))
                if url.path == "/ssf/stream" and method == "POST":
                    if fake.one_stream:
                        return self.send(409)
                    fake.start(stream := fake.create(body))
                    return self.send(201, stream)
                if url.path == "/ssf/stream" and method == "GET" and "stream_id" not in query:
                    return self.send(200, list(fake.streams.values()))
                if url.path.startswith("/ssf/poll/"):
                    stream = fake.streams.get(url.path.rsplit("/", 1)[1])
                if stream is None:
                    return self.send(404)
                if url.path == "/ssf/stream" and method == "GET":
                    return self.send(200, stream)
                if url.path == "/ssf/stream" and method == "PATCH":
                    stream.update({k: v for k, v in body.items() if k in ("events_requested", "description")})
                    poll_url = stream["delivery"]["endpoint_url"]
                    stream["delivery"] = dict(body.get("delivery", {}), endpoint_url=poll_url)
                    fake.start(stream)
                    return self.send(200, stream)
                if url.path == "/ssf/stream" and method == "DELETE":
                    del fake.streams[stream["stream_id"]]
                    return self.send(204)
                if url.path == "/ssf/status":
                    return self.send(200, {"stream_id": stream["stream_id"], "status": "enabled"})
                if url.path == "/ssf/verify":
                    fake.enqueue(stream, VERIFICATION, {"state": fake.verify_state or body["state"]})
                    return self.send(204)
                if url.path.startswith("/ssf/poll/"):
                    return self.send(200, fake.poll(stream["stream_id"], body))
                return self.send(404)

            def do_GET(self):
                self.route("GET")

            def do_POST(self):
                self.route("POST")

            def do_PATCH(self):
                self.route("PATCH")

            def do_DELETE(self):
                self.route("DELETE")

        return Handler


def self_test(only):
    """Runs every case whose name contains `only`; prints one line a case and a summary."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    keys = [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2)]
    user = {"format": "iss_sub", "iss": "ISSUER", "sub": "user-1"}
    session = {"format": "complex", "session": {"format": "opaque", "id": "sid-1"}, "user": user}
    reason = {"reason_admin": {"en": "test"}}
    revoked = (CAEP + "session-revoked", dict(reason, initiating_entity="user", event_timestamp=1), session)
    changed = (CAEP + "credential-change", dict(reason, credential_type="password", change_type="update"),
               user)
    disabled = (RISC + "account-disabled", {"reason": "hijacking"}, user)
    enabled = (RISC + "account-enabled", {}, {"format": "email", "email": "u@example.com"})
    one_token = (CAEP + "session-revoked", reason, {"format": "jwt_id", "iss": "ISSUER", "jti": "at-1"})

    def claims(change):  # a mutation that edits the claims of every SET but verification
        def mutate(header, c, keys_, stream):
            change(c, stream)
            return header, c, keys_[0], "RS256"
        return mutate

    def header(change, key=0, alg="RS256"):
        def mutate(h, c, keys_, stream):
            change(h)
            return h, c, keys_[key] if alg == "RS256" else "x" * 32, alg
        return mutate

    def refused(err, text, **fake):
        return dict(fake, sets=fake.get("sets", [revoked]), status=EXIT_VALIDATION, err=err, text=text)

    def broken(member, value, text):
        return dict(meta={member: value}, status=EXIT_PROTOCOL, text=text)

    cases = {
        "poll: four events, two after a wait, and a verification": dict(
            sets=[revoked, changed], later=[disabled, enabled], expect=4,
            args=["--verify", "--max-events", "3", "--require-txn"]),
        "poll: a jwt_id subject": dict(sets=[one_token], expect=1),
        "push: retried after two 503s": dict(
            mode="push", sets=[revoked, changed], later=[disabled], expect=3, fail_first=2,
            args=["--verify"]),
        "poll: 409 on create, so the stream is updated, then deleted": dict(
            one_stream=True, sets=[revoked], expect=1, args=["--delete-stream"]),
        "typ JWT": refused("invalid_request", "typ", mutate=header(lambda h: h.update(typ="JWT"))),
        "alg HS256": refused("invalid_key", "RS256", mutate=header(lambda h: None, alg="HS256")),
        "signed by another key": refused("invalid_key", "signature", mutate=header(lambda h: None, key=1)),
        "unknown kid": refused("invalid_key", "kid", mutate=header(lambda h: h.update(kid="k9"))),
        "iss of someone else": refused("invalid_issuer", "iss", mutate=claims(
            lambda c, s: c.update(iss="https://evil.example"))),
        "aud of another receiver": refused("invalid_audience", "aud", mutate=claims(
            lambda c, s: c.update(aud="other"))),
        "aud naming another receiver too": refused("invalid_audience", "aud", mutate=claims(
            lambda c, s: c.update(aud=["client", "other"]))),
        "exp present": refused("invalid_request", "exp", mutate=claims(lambda c, s: c.update(exp=2**31))),
        "sub present": refused("invalid_request", "sub", mutate=claims(lambda c, s: c.update(sub="u-1"))),
        "no iat": refused("invalid_request", "iat", mutate=claims(lambda c, s: c.pop("iat"))),
        "no sub_id": refused("invalid_request", "sub_id", mutate=claims(lambda c, s: c.pop("sub_id"))),
        "two events": refused("invalid_request", "exactly one", mutate=claims(
            lambda c, s: c["events"].update({RISC + "account-enabled": {}}))),
        "unknown subject format": refused("invalid_request", "unknown", mutate=claims(
            lambda c, s: c.update(sub_id={"format": "session_id", "id": "x"}))),
        "iss_sub without sub": refused("invalid_request", "members", mutate=claims(
            lambda c, s: c.update(sub_id={"format": "iss_sub", "iss": "x"}))),
        "opaque with an extra member": refused("invalid_request", "members", mutate=claims(
            lambda c, s: c.update(sub_id={"format": "opaque", "id": "x", "email": "u@example.com"}))),
        "complex inside complex": refused("invalid_request", "nest", mutate=claims(
            lambda c, s: c.update(sub_id={"format": "complex", "user": session}))),
        "session-revoked without reason_admin": refused("invalid_request", "reason_admin", mutate=claims(
            lambda c, s: c["events"][CAEP + "session-revoked"].pop("reason_admin"))),
        "an event not in events_delivered": refused("invalid_request", "events_delivered", mutate=claims(
            lambda c, s: c.update(events={CAEP + "token-claims-change": {"claims": {"a": 1}}}))),
        "the same jti twice": refused("invalid_request", "already", sets=[revoked], later=[revoked], expect=2,
                                      mutate=claims(lambda c, s: c.update(jti="same"))),
        "verification with another state": refused("invalid_state", "state", sets=[], verify_state="forged",
                                                   expect=0, args=["--verify"]),
        "push: aud of another receiver": dict(refused("invalid_audience", "aud", mutate=claims(
            lambda c, s: c.update(aud="other"))), mode="push"),
        "push: no authorization header": refused("authentication_failed", "authoriz", mode="push",
                                                 push_auth=False),
        "metadata: another issuer": broken("issuer", "https://other.example", "issuer"),
        "metadata: no jwks_uri": broken("jwks_uri", None, "jwks_uri"),
        "metadata: a draft spec_version": broken("spec_version", "1_0-ID2", "spec_version"),
        "metadata: poll not supported": broken("delivery_methods_supported", [PUSH], "delivery_methods"),
        "metadata: OAuth not among the schemes": broken("authorization_schemes", [{"spec_urn": "x"}], "6749"),
        "metadata: an empty array": broken("critical_subject_members", [], "empty"),
        "timeout: one of two events": dict(sets=[revoked], expect=2, args=["--timeout", "3"],
                                           status=EXIT_TIMEOUT, text="1 of 2"),
    }
    failures = []
    cases = {name: case for name, case in cases.items() if only in name}
    for name, case in cases.items():
        fake = FakeTransmitter(keys, **{k: case[k] for k in (
            "meta", "sets", "later", "mutate", "one_stream", "push_auth", "verify_state") if k in case})
        command = [sys.executable, __file__, case.get("mode", "poll"), fake.issuer, "client", "secret",
                   "--timeout", "15", "--expect", str(case.get("expect", 1)),
                   "--fail-first", str(case.get("fail_first", 0))] + case.get("args", [])
        started = time.monotonic()
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        lines = [json.loads(line) for line in result.stdout.splitlines()]
        problems = check_case(case, fake, result.returncode, lines)
        fake.server.shutdown()
        verdict = "ok" if not problems else "FAILED: " + "; ".join(problems)
        print(f"{verdict:6} {name} ({time.monotonic() - started:.1f}s)", flush=True)
        if problems:
            failures.append(name)
            print(result.stdout + result.stderr, flush=True)
    print(f"{len(cases) - len(failures)} passed, {len(failures)} failed", flush=True)
    return 1 if failures else 0


def check_case(case, fake, status, lines):
    """What one self-test case must show: its exit status, its output, what the fake saw."""
    problems, want = [], case.get("status", 0)
    if status != want:
        problems.append(f"exit {status}, expected {want}")
    kinds = [next(iter(line)) for line in lines]
    push = case.get("mode") == "push"
    if want == 0:
        sets = [line["set"] for line in lines if "set" in line]
        if kinds[:1] != ["ready"] or kinds[-1:] != ["done"] or len(sets) != case["expect"]:
            problems.append(f"output {kinds}")
        verified = [line["verified"]["jti"] for line in lines if "verified" in line]
        if "--verify" in case.get("args", []) and not verified:
            problems.append("no verified line")
        if push:
            fails, codes = case.get("fail_first", 0), [p[0] for p in fake.pushes]
            if codes[:fails] != [503] * fails or set(codes[fails:]) != {202} or any(
                    body for _, body, _ in fake.pushes[fails:]):
                problems.append(f"push answers {codes}")
        else:
            if not {line["jti"] for line in sets} | set(verified) <= set(fake.acks):
                problems.append("not every valid SET was acknowledged")
            if any(p.get("returnImmediately") is not False for p in fake.polls if p.get("maxEvents") != 0):
                problems.append("a poll did not ask for long polling")
            if case.get("later") and lines[-1]["done"]["empty_polls"]:
                problems.append("a long poll came back empty: the later SETs did not wake it")
        if case.get("one_stream") and (not lines[0]["ready"]["reused"] or fake.streams):
            problems.append("the existing stream was not reused and deleted")
        return problems
    error = lines[-1] if kinds[-1:] == ["error"] else {}
    if case["text"] not in error.get("error", ""):
        problems.append(f"error {error!r} does not mention {case['text']!r}")
    if "err" in case:
        if error.get("err") != case["err"]:
            problems.append(f"err {error.get('err')!r}, expected {case['err']!r}")
        if push:  # RFC 8935 §2.3: the transmitter was told, with a 400 and the err code
            refusals = [json.loads(body) for code, body, _ in fake.pushes if code == 400]
            if [r.get("err") for r in refusals] != [case["err"]]:
                problems.append(f"push answers {fake.pushes!r}")
        elif fake.set_errs.get(error.get("jti"), {}).get("err") != case["err"]:  # RFC 8936 §2.4.4
            problems.append(f"setErrs reported to the transmitter: {fake.set_errs!r}")
    return problems


def main(argv=None):
    global VERBOSE
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--self-test"]:
        return self_test(argv[1] if len(argv) > 1 else "")
    parser = argparse.ArgumentParser(description="SSF 1.0 receiver for Tessera's interop tests")
    parser.add_argument("mode", choices=["poll", "push"])
    parser.add_argument("issuer")
    parser.add_argument("client_id")
    parser.add_argument("client_secret")
    parser.add_argument("--events", nargs="+", default=DEFAULT_EVENTS)
    parser.add_argument("--expect", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--verify", action="store_true")
    parser.add_argument("--max-events", type=int, default=100)
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--scope", default="ssf.manage ssf.read")
    parser.add_argument("--require-txn", action="store_true")
    parser.add_argument("--delete-stream", action="store_true")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.max_events < 1 or args.expect < 0 or args.fail_first < 0:
        parser.error("--max-events must be at least 1; --expect and --fail-first not negative")
    unknown = [e for e in args.events if e not in SHORT_NAMES and ":" not in e]
    if unknown:
        parser.error(f"unknown event names {unknown}; use a URI or one of {sorted(SHORT_NAMES)}")
    VERBOSE = args.verbose
    receiver = Receiver(args)
    try:
        summary = run_poll(receiver) if args.mode == "poll" else run_push(receiver)
        if args.delete_stream:
            receiver.delete_stream()
    except Failed as failure:
        print(json.dumps(failure.line), flush=True)
        return failure.status
    except ProtocolError as error:
        print(json.dumps({"error": str(error), "kind": "protocol"}), flush=True)
        return EXIT_PROTOCOL
    emit("done", summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
