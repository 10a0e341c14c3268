"""Builds the generated protobuf/gRPC code: `python -m clonedesk.core.protogen` (or `make protos`).

`protos/clonedesk/v1/*.proto` → `services/v1/` (importable as `clonedesk.v1`, matching the proto
package, so the generated cross-file imports work unchanged).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROTO_ROOT = REPO / "protos"
GENERATED = REPO / "services" / "v1"


def generate(out_dir: Path = GENERATED, proto_root: Path = PROTO_ROOT) -> list[Path]:
    """Run protoc on every proto into `out_dir`; return the files written."""
    import grpc_tools
    from grpc_tools import protoc

    sources = sorted((proto_root / "clonedesk" / "v1").glob("*.proto"))
    if not sources:
        raise FileNotFoundError(f"no .proto files under {proto_root}")
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        args = ["protoc", f"-I{proto_root}", f"-I{well_known}", f"--python_out={tmp}", f"--pyi_out={tmp}",
                f"--grpc_python_out={tmp}"] + [str(s.relative_to(proto_root)) for s in sources]
        if protoc.main(args) != 0:
            raise RuntimeError("protoc failed: " + " ".join(args))
        produced = Path(tmp) / "clonedesk" / "v1"
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for path in sorted(produced.iterdir()):
            if path.name.endswith("_pb2_grpc.py") and "Stub" not in path.read_text():
                continue  # protoc writes an empty gRPC module for every file without a service
            target = out_dir / path.name
            shutil.copyfile(path, target)
            written.append(target)
    init = out_dir / "__init__.py"
    init.write_text('"""Generated from protos/clonedesk/v1 by `make protos`; do not edit."""\n')
    return [init] + written


if __name__ == "__main__":
    for file in generate(Path(sys.argv[1]) if len(sys.argv) > 1 else GENERATED):
        print(file)
