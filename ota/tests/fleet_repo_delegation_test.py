#!/usr/bin/python3
"""Nested delegations and hash bins written by `berth fleet delegate`,
served by Debian's nginx on 127.0.0.1 and read by one TUF client (berth's
own, or tuf-js's) after each step, which must deliver exactly the manifests
released:

- a team holding a delegated role's key delegates part of its paths to
  another team, signing only its own role (targets is not re-signed); the
  sub-team releases into its channel; paths outside the delegator's, a
  missing or wrong delegator key, and a loop are refused;
- TAP 15 hash bins (`--succinct`): every bin signed, a release lands in the
  bin the SHA-256 of the target path names, and clients find it there.

    fleet_repo_delegation_test.py BERTH berth|tuf-js

Exit 77 when nginx (or, for tuf-js, node and tuf-js) is missing.
"""
import hashlib
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fleet_repo_lib as lib  # noqa: E402

manifest = lib.manifest


def bin_of(path, bits, prefix):
    n = int.from_bytes(hashlib.sha256(path.encode()).digest()[:4], "big") >> (32 - bits)
    width = len(f"{2 ** bits - 1:x}")
    return f"{prefix}-{n:0{width}x}"


def snapshot(repo):
    meta = os.path.join(repo, "metadata")
    with open(os.path.join(meta, "timestamp.json")) as f:
        v = json.load(f)["signed"]["meta"]["snapshot.json"]["version"]
    with open(os.path.join(meta, f"{v}.snapshot.json")) as f:
        return json.load(f)["signed"]["meta"]


def role(repo, name):
    v = snapshot(repo)[name + ".json"]["version"]
    with open(os.path.join(repo, "metadata", f"{v}.{name}.json")) as f:
        return json.load(f)["signed"]


def main():
    args = lib.test_args(__doc__, "berth-fleet-deleg-")
    if args is None:
        return 2
    berth, kind, work = args
    servers = []
    try:
        fleet = lib.fleet_runner(berth)

        def key(name):
            k = os.path.join(work, name + ".pem")
            fleet("keygen", k)
            return k

        def serve(repo, sub):
            os.makedirs(os.path.join(work, sub))
            nginx = lib.Nginx(repo).start()
            servers.append(nginx)
            c = lib.client(kind, berth, os.path.join(work, sub), os.path.join(repo, "metadata", "root.json"))
            want = {"refresh": "ok"}

            def check(step, names):
                got = c.update(nginx.url, names)
                exp = {k: want.get(k, "missing") for k in ["refresh"] + names}
                if got != exp:
                    raise AssertionError(f"{step}: {c.name} got {got}, expected {exp}")
                print(f"ok {step}")
            return want, check

        # ---- nested delegations ------------------------------------------
        repo = os.path.join(work, "repo")
        fleet("init", repo)
        want, check = serve(repo, "nested")
        team, lab, other = key("team-a"), key("lab"), key("other")
        fleet("delegate", repo, "--role", "team-a", "--paths", "channels/team-a-*/*", "--key", team + ".pub")
        edge, labc, stable = ("channels/team-a-edge/manifest.json", "channels/team-a-lab/manifest.json",
                              "channels/stable/manifest.json")
        channels = [edge, labc, stable]
        want[edge] = manifest(os.path.join(work, "e1.json"), 1)
        fleet("release", repo, "--channel", "team-a-edge", "--key", team, os.path.join(work, "e1.json"))
        check("team-a released team-a-edge 1", channels)

        targets_v = snapshot(repo)["targets.json"]["version"]
        nest = ["delegate", repo, "--from", "team-a", "--role", "lab", "--key", lab + ".pub"]
        fleet(*nest, "--paths", "channels/prod/*", "--from-key", team, ok=False,
              err="path glob `channels/prod/*` is not within the paths of role `team-a` (channels/team-a-*/*)")
        fleet(*nest, "--paths", "channels/team-a-lab/*", ok=False, err="give its key with --from-key")
        fleet(*nest, "--paths", "channels/team-a-lab/*", "--from-key", other, ok=False, err="is not a key of role `team-a`")
        fleet(*nest, "--paths", "channels/team-a-lab*/*", "--from-key", team, "--role-key", lab)
        assert snapshot(repo)["targets.json"]["version"] == targets_v, "a nested delegation re-signed targets"
        assert [r["name"] for r in role(repo, "team-a")["delegations"]["roles"]] == ["lab"]
        fleet("delegate", repo, "--from", "lab", "--role", "team-a", "--paths", "channels/team-a-lab/*", "--key",
              team + ".pub", "--from-key", lab, ok=False, err="would be a loop")
        check("team-a delegated channels/team-a-lab*/* to lab", channels)

        want[labc] = manifest(os.path.join(work, "l1.json"), 1)
        fleet("release", repo, "--channel", "team-a-lab", "--key", lab, os.path.join(work, "l1.json"))
        assert labc in role(repo, "lab")["targets"] and labc not in role(repo, "team-a")["targets"]
        check("lab released team-a-lab 1 (nested role)", channels)
        manifest(os.path.join(work, "x.json"), 2)
        fleet("release", repo, "--channel", "team-a-edge", "--key", lab, os.path.join(work, "x.json"), ok=False,
              err="is not a key of role `team-a`")
        fleet("release", repo, "--channel", "stable", "--key", lab, os.path.join(work, "x.json"), ok=False,
              err="is not delegated")
        want[labc] = manifest(os.path.join(work, "l2.json"), 2)
        fleet("release", repo, "--channel", "team-a-lab", "--key", lab, os.path.join(work, "l2.json"))
        r = fleet("refresh", repo, "--within", "3650d", "--key", team, "--key", lab)
        assert r.stdout.startswith("re-signed lab 4, team-a 3, targets"), r.stdout
        check("lab released team-a-lab 2, refresh re-signed both teams", channels)
        fleet("delegate", repo, "--succinct", "2", "--role", "bins", "--key", lab + ".pub", "--role-key", lab, ok=False,
              err="already delegates by paths")

        # ---- hash bins (TAP 15) ------------------------------------------
        repo2 = os.path.join(work, "repo2")
        fleet("init", repo2)
        want, check = serve(repo2, "bins")
        bins = key("bins")
        fleet("delegate", repo2, "--succinct", "3", "--role", "bins", "--key", bins + ".pub", ok=False,
              err="role `bins` needs 1 keys, 0 given")
        fleet("delegate", repo2, "--succinct", "3", "--role", "bins", "--key", bins + ".pub", "--role-key", bins)
        listed = sorted(k for k in snapshot(repo2) if k.startswith("bins-"))
        assert listed == [f"bins-{i}.json" for i in range(8)], listed
        check("8 empty bins", channels)
        want[stable] = manifest(os.path.join(work, "s1.json"), 1)
        want[edge] = manifest(os.path.join(work, "e1b.json"), 1)
        fleet("release", repo2, "--channel", "stable", os.path.join(work, "s1.json"), ok=False,
              err=f"is delegated to role `{bin_of(stable, 3, 'bins')}`")
        fleet("release", repo2, "--channel", "stable", "--key", bins, os.path.join(work, "s1.json"))
        fleet("release", repo2, "--channel", "team-a-edge", "--key", bins, os.path.join(work, "e1b.json"))
        for c in (stable, edge):
            assert c in role(repo2, bin_of(c, 3, "bins"))["targets"], f"{c} is not in {bin_of(c, 3, 'bins')}"
        check("stable 1 and team-a-edge 1 in their bins", channels)
        return 0
    except lib.Skip as e:
        print(f"SKIP: {e}")
        return 77
    finally:
        for s in servers:
            s.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
