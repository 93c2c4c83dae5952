"""kcat (Debian's, on librdkafka 2.0.2): metadata, produce and consume with keys,
headers, every codec and every acks setting."""

import json
import subprocess

import pytest

from conftest import unique

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


def kcat(bootstrap, *args, stdin=None, timeout=60):
    out = subprocess.run(["kcat", "-b", bootstrap, *args], input=stdin, capture_output=True,
                         text=True, timeout=timeout)
    assert out.returncode == 0, f"kcat {args} failed: {out.stderr}"
    return out.stdout


def test_metadata_lists_the_broker(broker):
    meta = json.loads(kcat(broker.bootstrap, "-L", "-J"))
    assert [b["name"] for b in meta["brokers"]] == [broker.bootstrap]


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("acks", ["0", "1", "all"])
def test_produce_and_consume_with_keys_and_headers(broker, codec, acks):
    topic = unique(f"kcat-{codec}-{acks}")
    lines = "".join(f"k{i}:v{i}\n" for i in range(50))
    kcat(broker.bootstrap, "-P", "-t", topic, "-K", ":", "-H", "h1=x", "-H", "h2=y",
         "-X", f"compression.codec={codec}", "-X", f"acks={acks}", stdin=lines)
    out = kcat(broker.bootstrap, "-C", "-t", topic, "-e", "-J", "-q")
    msgs = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert [(m["key"], m["payload"]) for m in msgs] == [(f"k{i}", f"v{i}") for i in range(50)]
    assert [m["offset"] for m in msgs] == list(range(50))
    assert all(m["headers"] == ["h1", "x", "h2", "y"] for m in msgs)
