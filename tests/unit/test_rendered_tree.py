"""The rendered tree holds each file compressed, with its size and hash beside it."""

from __future__ import annotations

from makeflux.manifest import content_hash
from makeflux.render import PackedFiles


def test_packed_files_give_back_every_byte_with_its_size_and_hash():
    files = PackedFiles()
    contents = {
        "b/config.yaml": b"replicas: 3\n" * 1000,
        "a/empty.yaml": b"",
        "c/binary.bin": bytes(range(256)) * 3,
    }
    for path, content in contents.items():
        files[path] = content
    assert list(files) == list(contents), "insertion order, like a dict"
    assert len(files) == 3 and "a/empty.yaml" in files and "nope" not in files
    for path, content in contents.items():
        assert files[path] == content
        assert files.size(path) == len(content)
        assert files.digest(path) == content_hash(content)
    assert dict(files.items()) == contents
    del files["a/empty.yaml"]
    assert list(files) == ["b/config.yaml", "c/binary.bin"]


def test_a_large_repetitive_file_is_held_in_a_fraction_of_its_size():
    files = PackedFiles()
    line = b"  - name: node-%03d\n    address: 10.0.0.%d\n"
    content = b"".join(line % (i, i) for i in range(200))
    files["nodes.yaml"] = content
    held = files._entries["nodes.yaml"]
    assert isinstance(held, bytes)  # one object a file: size, hash and compressed content
    assert files["nodes.yaml"] == content
    assert len(held) * 3 < len(content)
