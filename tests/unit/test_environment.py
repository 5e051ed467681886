"""The installed environment: no two packages install the same file with different contents.

Installers write such a file in whichever order they run (Poetry in parallel), so which copy wins, or
whether a torn mix is left, depends on the machine; xgboost's Linux wheel once pulled in
nvidia-nccl-cu12, whose libnccl.so.2 overwrote torch's and crashed `import torch` in CI.
"""

from collections import defaultdict
from importlib import metadata


def test_no_file_is_installed_by_two_packages_with_different_contents():
    owners = defaultdict(dict)
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        for line in (dist.read_text("RECORD") or "").splitlines():
            path, digest, _ = line.rsplit(",", 2)
            if digest and ".dist-info/" not in path and not path.endswith(".pyc"):
                owners[path][name] = digest
    clashes = {p: by for p, by in owners.items() if len(set(by.values())) > 1}
    assert not clashes, "files installed by two packages with different contents: " + "; ".join(
        f"{p} ({', '.join(sorted(by))})" for p, by in sorted(clashes.items())[:5]
    )
