"""Assertions and the two outcomes a case can raise besides passing."""


class Skip(Exception):
    """Raised by a case that cannot run here (e.g. no IPv6 loopback)."""


class CaseFailure(AssertionError):
    pass


def check(cond, msg):
    if not cond:
        raise CaseFailure(msg)


def check_eq(got, want, what):
    if got != want:
        raise CaseFailure("%s: expected %r, got %r" % (what, want, got))


def check_error(r, status, reason, what):
    """Checks an infergate error response (a `Resp`): status and JSON
    {"error", "reason"}. `reason` None checks only that there is an error."""
    check(r.status == status, "%s: expected status %d (%s), got %d body %r"
          % (what, status, reason, r.status, r.body[:300]))
    try:
        j = r.json()
    except ValueError:
        raise CaseFailure("%s: error body is not JSON: %r" % (what, r.body[:300]))
    check(isinstance(j, dict), "%s: error body is not an object: %r" % (what, j))
    check(isinstance(j.get("error"), str) and j["error"] != "",
          "%s: error body lacks a non-empty \"error\": %r" % (what, j))
    if reason is not None:
        check_eq(j.get("reason"), reason, "%s: reason" % what)
