"""The HTTP API against its own OpenAPI document: Schemathesis (PyPI) generates requests from
`/v1/openapi.json` of `quiver serve --http-addr` on a quickstart project and checks that no
answer is a server error (5xx) and that every answer has the status, content type and shape
the document declares.

Run with `crates/quiver-server/tests/browser/run.sh` (after the browser test); QUIVER_BIN as
there. The 413 for an oversize body and 400s for values the schema cannot rule out are
expected answers, so Schemathesis' checks that demand a 2xx for every schema-valid body
(`positive_data_acceptance`) or a 400/422 for every invalid one are not asked for.
"""

import subprocess
import sys
import tempfile
import pathlib

from test_catalog import make_project, quiver_bin, start_server, wait_for

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def main():
    quiver = quiver_bin()
    root = pathlib.Path(tempfile.mkdtemp(prefix="quiver-schema-"))
    project = make_project(quiver, root)
    server, base = start_server(quiver, project)
    try:
        wait_for(base + "/healthz", server)
        done = subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "run", base + "/v1/openapi.json",
             "--checks", CHECKS, "--max-examples", "100", "--seed", "7", "--no-color"],
            capture_output=True, text=True, timeout=900, cwd=root,  # its cache folder goes there
        )
        print(done.stdout[-4000:])
        if done.returncode != 0:
            sys.exit(f"schemathesis found problems (exit {done.returncode}):\n{done.stdout[-8000:]}\n{done.stderr[-2000:]}")
        if server.poll() is not None:
            sys.exit(f"quiver serve exited during the run: {server.stderr.read()}")
    finally:
        server.terminate()
        server.wait(timeout=30)
    print("API schema test: ok")


if __name__ == "__main__":
    main()
