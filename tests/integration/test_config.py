"""The gateway's command line and configuration, from the outside.

Config errors exit 2 and name the key path on stderr; check-config prints the
effective configuration as JSON; version works; GET /admin/config on a
running gateway shows the effective configuration it runs with.
"""

import json
import os
import subprocess
import tempfile

import harness as h

suite = h.Suite("config")


def run_gw(args, timeout=30):
    return subprocess.run([h.gateway_bin()] + args, capture_output=True, timeout=timeout,
                          env=h.child_env(), stdin=subprocess.DEVNULL)


def good_config():
    # check-config and a serve that stops at a config error bind nothing.
    return {
        "listen": "127.0.0.1:0",
        "admin_listen": "127.0.0.1:0",
        "upstream": {"url": "http://127.0.0.1:%d" % h.refused_port(), "max_concurrency": 7},
        "limits": {"max_queue": 33},
    }


def write_json(d, name, doc):
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def expect_config_error(cmd, path, key, what):
    p = run_gw([cmd, "-c", path])
    err = p.stderr.decode("utf-8", "replace")
    h.check_eq(p.returncode, 2, "%s: exit code of infergate %s (stderr %r)" % (what, cmd, err[:300]))
    h.check(key in err, "%s: stderr does not name %r: %r" % (what, key, err[:500]))


@suite.case
def version_exits_0():
    p = run_gw(["version"])
    h.check_eq(p.returncode, 0, "infergate version exit code (stderr %r)" % p.stderr[:200])
    h.check(p.stdout.strip(), "infergate version printed nothing")


@suite.case
def help_exits_0():
    p = run_gw(["--help"])
    h.check_eq(p.returncode, 0, "infergate --help exit code")
    h.check(b"serve" in p.stdout, "--help does not mention serve: %r" % p.stdout[:300])


@suite.case
def unknown_subcommand_exits_2():
    p = run_gw(["no-such-subcommand"])
    h.check_eq(p.returncode, 2, "exit code for an unknown subcommand")
    h.check(b"no-such-subcommand" in p.stderr, "stderr does not name the subcommand: %r"
            % p.stderr[:300])


@suite.case
def check_config_good_prints_json():
    with tempfile.TemporaryDirectory() as d:
        cfg = good_config()
        path = write_json(d, "good.json", cfg)
        p = run_gw(["check-config", "-c", path])
        h.check_eq(p.returncode, 0, "check-config exit code (stderr %r)" % p.stderr[:300])
        try:
            eff = json.loads(p.stdout)
        except ValueError:
            raise h.CaseFailure("check-config did not print JSON: %r" % p.stdout[:300])
        h.check_eq(eff.get("listen"), cfg["listen"], "effective listen")
        h.check_eq(eff.get("upstream", {}).get("max_concurrency"), 7,
                   "effective upstream.max_concurrency")
        h.check_eq(eff.get("limits", {}).get("max_queue"), 33, "effective limits.max_queue")
        # Defaults are filled in.
        h.check(isinstance(eff.get("drain", {}).get("grace_ms"), int),
                "effective config lacks the default drain.grace_ms: %r" % eff.get("drain"))
        h.check(isinstance(eff.get("routes"), list) and eff["routes"],
                "effective config lacks the default routes")


@suite.case
def unknown_top_level_key_exits_2():
    with tempfile.TemporaryDirectory() as d:
        cfg = good_config()
        cfg["bogus_key"] = 1
        path = write_json(d, "bad.json", cfg)
        expect_config_error("check-config", path, "bogus_key", "unknown top-level key")
        expect_config_error("serve", path, "bogus_key", "unknown top-level key")


@suite.case
def unknown_nested_key_exits_2():
    with tempfile.TemporaryDirectory() as d:
        cfg = good_config()
        cfg["upstream"]["max_concurency"] = 4
        path = write_json(d, "bad.json", cfg)
        expect_config_error("check-config", path, "upstream.max_concurency", "misspelt nested key")
        expect_config_error("serve", path, "upstream.max_concurency", "misspelt nested key")


@suite.case
def wrong_type_exits_2():
    with tempfile.TemporaryDirectory() as d:
        cfg = good_config()
        cfg["upstream"]["max_concurrency"] = "four"
        path = write_json(d, "bad.json", cfg)
        expect_config_error("check-config", path, "upstream.max_concurrency", "string for an int")
        expect_config_error("serve", path, "upstream.max_concurrency", "string for an int")
        cfg = good_config()
        cfg["limits"]["max_body_bytes"] = -5
        path = write_json(d, "bad2.json", cfg)
        expect_config_error("serve", path, "limits.max_body_bytes", "negative size")


@suite.case
def invalid_json_exits_2():
    with tempfile.TemporaryDirectory() as d:
        path = write_json(d, "broken.json", '{"listen": "127.0.0.1:1",')
        expect_config_error("serve", path, "broken.json", "truncated JSON")


@suite.case
def missing_file_exits_2():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "does-not-exist.json")
        p = run_gw(["serve", "-c", path])
        h.check(p.returncode in (1, 2), "exit code for a missing config file: %d" % p.returncode)
        h.check(b"does-not-exist.json" in p.stderr, "stderr does not name the file: %r"
                % p.stderr[:300])


@suite.case
def admin_config_shows_effective_config():
    with h.Env("adminconfig") as env:
        model = env.model("--quiet")
        gw = env.gateway(model.url, {"upstream": {"max_concurrency": 5},
                                     "limits": {"max_queue": 77}})
        r = gw.admin("GET", "/admin/config")
        h.check_eq(r.status, 200, "GET /admin/config")
        eff = r.json()
        h.check_eq(eff.get("listen"), gw.config["listen"], "listen in /admin/config")
        h.check_eq(eff.get("upstream", {}).get("max_concurrency"), 5,
                   "upstream.max_concurrency in /admin/config")
        h.check_eq(eff.get("limits", {}).get("max_queue"), 77, "limits.max_queue in /admin/config")


@suite.case
def port_zero_binds_free_ports_and_logs_them():
    port_zero_logged_at("info")


@suite.case
def port_zero_logged_even_at_log_level_error():
    # The start-up line is the only report of the bound ports: a quiet
    # gateway (log.level warn or error) must still write it.
    port_zero_logged_at("error")


def port_zero_logged_at(level):
    with h.Env("port0-" + level) as env:
        model = env.model("--quiet")
        cfg = {"listen": "127.0.0.1:0", "admin_listen": "127.0.0.1:0",
               "upstream": {"url": model.url}, "drain": {"grace_ms": 0},
               "log": {"level": level}}
        path = write_json(env.dir, "port0.json", cfg)
        p = subprocess.Popen([h.gateway_bin(), "serve", "-c", path], stderr=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                             env=h.child_env())
        try:
            line = p.stderr.readline().decode()
            rec = json.loads(line)
            h.check_eq(rec.get("msg"), "infergate serving", "first log line %r" % line)
            port, admin = rec.get("port"), rec.get("admin_port")
            h.check(isinstance(port, int) and port > 0, "no bound data port in %r" % line)
            h.check(isinstance(admin, int) and admin > 0 and admin != port,
                    "no distinct bound admin port in %r" % line)
            h.check_eq(h.request(admin, "GET", "/healthz").status, 200, "admin on the logged port")
            h.check_eq(h.request(port, "GET", "/v2/health/live").status, 200,
                       "data port on the logged port")
        finally:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            p.stderr.close()


if __name__ == "__main__":
    suite.run()
