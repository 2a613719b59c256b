"""The two backbones that ship with TrainDesk load offline, checked, and answer as published."""

from __future__ import annotations

import socket

import numpy as np
import pytest
import torch

from ml.models import backbones
from ml.models.spec import ModelSpec, build_model
from ml.runs.project import ModelConfig


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access is not allowed in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _net(key: str, input_shape, dtype="float32", mean=None, std=None):
    from ml.models.presets import backbone_head
    from ml.models.spec import InputSpec

    kind = "image" if len(input_shape) == 3 else "text"
    spec_in = InputSpec(shape=tuple(input_shape), dtype=dtype, kind=kind)
    layers, name = backbone_head(ModelConfig(backbone=key), spec_in, 2)
    spec = ModelSpec(input_shape=list(input_shape), layers=layers, task="classification",
                     name=name, input_dtype=dtype)
    net = build_model(spec, mean, std)
    backbones.load_pretrained(net, spec.layers)
    return net.eval()


def test_efficientnet_in_a_traindesk_network_sees_the_daisy():
    """Pixels in [0, 1], the model's own first step normalising them as the backbone needs:
    the shipped ImageNet classifier on top says class 985, "daisy"."""
    from PIL import Image
    from sklearn.datasets import load_sample_image

    from ml.models.efficientnet import pretrained_lite0

    info = backbones.resolve(backbones.EFFICIENTNET)
    net = _net(backbones.EFFICIENTNET, (3, 224, 224), mean=info.mean, std=info.std)
    image = Image.fromarray(load_sample_image("flower.jpg")).resize((224, 224), Image.BILINEAR)
    x = torch.from_numpy(np.asarray(image, np.float32).transpose(2, 0, 1)[None] / 255.0)
    classifier = pretrained_lite0()  # its ImageNet classifier, for the known answer
    with torch.no_grad():
        features = net.body[0](net.normalize(x))
        logits = classifier._fc(features)
    assert int(logits.argmax()) == 985


def test_minilm_in_a_traindesk_network_ranks_sentences_by_meaning():
    from ml.data.text import WordPieces

    info = backbones.resolve(backbones.MINILM)
    assert info.params == 22_565_376 and info.feature_dim == 384  # without BERT's pooler
    doc = WordPieces.document((backbones.minilm_folder() / "tokenizer.json").read_text(),
                              info.max_length, info.key)
    tok = WordPieces(doc)
    net = _net(backbones.MINILM, (info.max_length,), dtype="int64")
    assert sum(p.numel() for p in net.body[0].parameters()) == info.params
    texts = ["A man is eating food.", "A man is eating a piece of bread.",
             "A man is riding a horse.", "The new movie is awesome."]
    with torch.no_grad():
        emb = net.body[0](torch.from_numpy(tok.encode(texts)))
    emb = torch.nn.functional.normalize(emb, dim=1)
    sims = (emb[0] @ emb.T).tolist()
    assert sims[1] > 0.6 > sims[2] > sims[3]


def test_the_shipped_weights_are_checked_against_their_pinned_hashes():
    backbones._VERIFIED.clear()
    for info in (backbones.resolve(backbones.EFFICIENTNET), backbones.resolve(backbones.MINILM)):
        backbones.verify_file(info.weights[0], info.sha256)
        assert info.license == "Apache-2.0" and info.source
