"""Turn `containerd config default` (stdin) into a private instance's config:
own root, state and sockets, the test pause image, and oom_score_adj kept
within containerd's own (as the kubelet's nodes run it).
usage: containerd config default | containerd_config.py WORKDIR SOCKET"""
import sys

w, sock = sys.argv[1], sys.argv[2]
section = ""
for line in sys.stdin.read().splitlines():
    t = line.strip()
    if t.startswith("["):
        section = t
    indent = line[: len(line) - len(line.lstrip())]
    if line.startswith("root = "):
        line = f'root = "{w}/root"'
    elif line.startswith("state = "):
        line = f'state = "{w}/state"'
    elif section == "[grpc]" and t.startswith("address = "):
        line = f'{indent}address = "{sock}"'
    elif section == "[ttrpc]" and t.startswith("address = "):
        line = f'{indent}address = "{sock}.ttrpc"'
    elif t.startswith("sandbox_image = "):
        line = f'{indent}sandbox_image = "localhost/pause:test"'
    elif t.startswith("restrict_oom_score_adj = "):
        line = f"{indent}restrict_oom_score_adj = true"
    print(line)
