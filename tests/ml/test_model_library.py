"""The model library: the built-in backbones, added folders kept in models.json, the refusals
of folders TrainDesk cannot use, and the memory fit."""

import json
import re
import shutil
from pathlib import Path

import pytest

from ml.errors import ModelSpecError
from ml.models import library
from ml.models.backbones import EFFICIENTNET, MINILM, resolve

#: What each refused folder's message says (the words a user reads first).
REFUSALS = {
    "not_a_folder": "is not a folder",
    "no_config": "it has no config.json",
    "remote_code": "remote code",
    "pickled_only": "only pickled weights (pytorch_model.bin)",
    "unknown_type": "a gpt2, which TrainDesk cannot fine-tune",
    "no_tokenizer": "has no tokenizer.json",
}


def bad_folder(kind: str, tmp: Path, tiny_bert: Path) -> Path:
    """A folder (or file) that the library must refuse, one per :data:`REFUSALS` key."""
    path = tmp / kind
    if kind == "not_a_folder":
        path.write_text("a file, not a model folder")
        return path
    if kind == "no_config":
        path.mkdir()
        (path / "model.safetensors").write_bytes(b"")
        return path
    shutil.copytree(tiny_bert, path)
    config = json.loads((path / "config.json").read_text())
    if kind == "remote_code":
        config["auto_map"] = {"AutoModel": "modeling_custom.CustomModel"}
    elif kind == "pickled_only":
        (path / "model.safetensors").rename(path / "pytorch_model.bin")
    elif kind == "unknown_type":
        config["model_type"] = "gpt2"
    elif kind == "no_tokenizer":
        (path / "tokenizer.json").unlink()
    (path / "config.json").write_text(json.dumps(config))
    return path


def test_the_built_in_backbones_are_listed_with_what_a_user_needs_to_choose():
    rows = {e.key: e for e in library.entries()}
    assert list(rows) == [EFFICIENTNET, MINILM]
    image, text = rows[EFFICIENTNET], rows[MINILM]
    assert (image.kind, image.input_size, image.license) == ("image", "224 px", "Apache-2.0")
    assert (text.kind, text.architecture, text.input_size) == ("text", "bert", "128 word pieces")
    assert text.params == 22_565_376 and image.params == 3_371_008
    assert image.disk_bytes > 10_000_000 and text.disk_bytes > 80_000_000
    assert image.builtin and text.builtin and not image.error
    assert image.fit in ("fits", "tight", "too big")
    assert "to fine-tune (batch of 32)" in image.fit_text and "free" in image.fit_text


def test_an_added_folder_is_kept_in_models_json_once_and_removed(tiny_bert, tiny_vit):
    entry = library.add_folder(str(tiny_bert))
    assert (entry.kind, entry.architecture, entry.key) == ("text", "bert", str(tiny_bert))
    library.add_folder(str(tiny_bert) + "/")  # the same folder again: still one row
    library.add_folder(str(tiny_vit))
    doc = json.loads(library.library_path().read_text())
    assert doc == {"format": "traindesk-model-library", "version": 1,
                   "folders": [str(tiny_bert), str(tiny_vit)]}
    rows = library.entries()
    assert [e.key for e in rows] == [EFFICIENTNET, MINILM, str(tiny_bert), str(tiny_vit)]
    assert rows[3].kind == "image" and rows[3].input_size == "32 px"
    assert library.remove_folder(str(tiny_bert)) == str(tiny_bert)
    assert library.added_folders() == [str(tiny_vit)]
    with pytest.raises(ModelSpecError, match="is not in the model library"):
        library.remove_folder(str(tiny_bert))
    with pytest.raises(ModelSpecError, match="built into TrainDesk"):
        library.remove_folder(MINILM)


@pytest.mark.parametrize("kind", sorted(REFUSALS))
def test_a_folder_traindesk_cannot_use_is_refused_with_the_reason(kind, tmp_path, tiny_bert):
    folder = bad_folder(kind, tmp_path, tiny_bert)
    with pytest.raises(ModelSpecError, match=re.escape(REFUSALS[kind])):
        library.add_folder(str(folder))
    assert not library.library_path().exists()  # nothing was remembered


def test_an_added_folder_that_was_moved_is_listed_with_why_not_dropped(tmp_path, tiny_bert):
    copy = shutil.copytree(tiny_bert, tmp_path / "moved-bert")
    library.add_folder(str(copy))
    shutil.rmtree(copy)
    row = library.entries()[-1]
    assert row.key == str(copy) and "was not found (moved or deleted?)" in row.error and not row.fit


def test_a_damaged_or_newer_library_file_is_refused_plainly():
    path = library.library_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{not json")
    with pytest.raises(ModelSpecError, match="is not a TrainDesk model library; delete it"):
        library.entries()
    path.write_text(json.dumps({"format": library.LIBRARY_FORMAT, "version": 9,
                                "folders": []}))
    with pytest.raises(ModelSpecError, match=r"newer TrainDesk \(version 9\)"):
        library.added_folders()


def test_the_memory_fit_says_fits_tight_or_too_big_with_the_numbers():
    assert library.memory_fit(1_000_000_000, 4_000_000_000) == (
        "fits", "fits: about 1.0 GB to fine-tune (batch of 32), 4.0 GB free")
    assert library.memory_fit(3_000_000_000, 4_000_000_000)[0] == "tight"
    assert library.memory_fit(5_000_000_000, 4_000_000_000)[0] == "too big"
    assert library.memory_fit(5_000_000_000, 0)[0] == ""
    # Fine-tuning MiniLM: 16 bytes per weight plus a batch's activations (about 2.3 GB).
    need = library.training_memory(resolve(MINILM))
    assert 22_565_376 * 16 < need < 4_000_000_000
