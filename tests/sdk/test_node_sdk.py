"""The official Node SDK (`openai` on npm, installed by tests/sdk/node/setup.sh) against the
shared stack: runs `node --test` on tests/sdk/node/*.test.mjs with the gateway's URL, API key
and model in the environment, and fails with node's output when a Node test fails."""

import os
import pathlib
import shutil
import subprocess

from conftest import API_KEY, POOL

NODE_DIR = pathlib.Path(__file__).resolve().parent / "node"


def test_the_node_sdk_smoke_tests_pass(stack):
    node = shutil.which("node")
    assert node, "node is not installed: run tests/sdk/node/setup.sh (tests/sdk/run.sh does)"
    assert (NODE_DIR / "node_modules" / "openai").is_dir(), \
        "the openai npm package is not installed: run tests/sdk/node/setup.sh (tests/sdk/run.sh does)"
    tests = sorted(path.name for path in NODE_DIR.glob("*.test.mjs"))
    assert tests, f"no *.test.mjs in {NODE_DIR}"
    env = dict(os.environ, PICE_GATEWAY_URL=stack.gateway_url, PICE_API_KEY=API_KEY, PICE_MODEL=POOL)
    result = subprocess.run([node, "--test", "--test-reporter=spec", *tests], cwd=NODE_DIR, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    assert result.returncode == 0, f"node --test exited with {result.returncode}:\n{result.stdout}"
