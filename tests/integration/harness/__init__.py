"""Integration test harness for infergate: spawns the real binaries and talks
to them. Stdlib only; runs under /usr/bin/python3 on a bare Debian.

Each test_*.py is a standalone script that does `import harness as h`; this
package re-exports its modules' public names so that one import is enough.
The modules, one concern each:

  checks   Skip, CaseFailure, check, check_eq, check_error
  proc     binary paths, child environment, Proc (a child stopped by pid,
           its output in files, sanitizer scan), IO_TIMEOUT
  net      refused_port, /proc views of TCP connections and descriptors,
           IPv6 availability, host:port formatting
  httpc    request, Resp, RawConn, http_req, curl
  sync     wait_for, parallel, Background
  servers  Model, EchoModel, Gateway (each started on port 0, reporting the
           port it bound), base_config, deep_merge, PASSTHROUGH_ONLY
  env      Env, the per-case context that owns and stops the children
  load     LoadClient, the counting keep-alive load client (drain test)
  runner   Suite, the case runner and its command line

Nothing here asserts on durations. Timeouts only bound a test that would
otherwise hang; synchronisation uses observable state (the model's /stats,
the gateway's /autoscale, the order in which bytes arrive).
"""

from .checks import CaseFailure, Skip, check, check_eq, check_error
from .env import Env
from .httpc import RawConn, Resp, curl, header_dict, http_req, request
from .load import LoadClient
from .net import (fd_census, fmt_hostport, ipv6_loopback_available, refused_port,
                  tcp_inode_peers, tcp_peer_ports, tcp_rows)
from .proc import (IO_TIMEOUT, Proc, child_env, gateway_bin, model_bin, set_binaries)
from .runner import Suite, parse_args
from .servers import (PASSTHROUGH_ONLY, EchoModel, Gateway, Model, base_config,
                      deep_merge)
from .sync import Background, parallel, wait_for
