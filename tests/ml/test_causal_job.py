"""A causal LM fine-tuned as a run (ml.jobs.causal) and its commands: ``train --task
causal-lm``, ``generate``, ``export --format hf|adapter``; stop and resume to the same weights,
a finished run resumed is a no-op, a NaN goes back an epoch, and bad input writes nothing."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from ml.errors import Cancelled, DataError, RunError, TrainingError
from ml.jobs import causal as job_module
from ml.jobs.causal import CausalLMJob, load_tuned
from ml.runs.folder import LM_WEIGHTS, RunFolder
from ml.runs.project import LanguageModelConfig
from tests.conftest import run_cli, run_main

PAIRS = [("What is two plus two?", "Four."), ("Name a colour.", "Blue."),
         ("What is the capital of France?", "Paris."), ("hello there, how are you?",
                                                       "I am fine, thank you.")]


@pytest.fixture(scope="module")
def chat_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("lmdata") / "chat.jsonl"
    path.write_text("".join(json.dumps({"messages": [
        {"role": "user", "content": q}, {"role": "assistant", "content": a}]}) + "\n"
        for q, a in PAIRS * 5), encoding="utf-8")
    return path


def _config(model, **kw) -> LanguageModelConfig:
    return LanguageModelConfig(**{"backbone": str(model), "epochs": 3, "lr": 3e-2,
                                  "batch_size": 4, "max_length": 64, **kw})


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, tiny_llama, chat_file):
    out = tmp_path_factory.mktemp("lmruns") / "lora"
    done = run_main("train", "--task", "causal-lm", "--backbone", str(tiny_llama), "--data",
                    str(chat_file), "--mode", "lora", "--epochs", "3", "--lr", "3e-2",
                    "--max-length", "64", "--lora-rank", "4", "--seed", "1", "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out, done


def test_lora_from_the_command_line_lowers_perplexity_and_records_it(lora_run):
    out, done = lora_run
    assert "status: finished" in done.stdout and "test: perplexity" in done.stdout
    assert "val perplexity" in done.stderr and "sample:" in done.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    test = metrics["test"]
    assert test["perplexity"] < test["perplexity_before"] * 0.9, test
    assert metrics["tokens_per_second"] > 0 and metrics["examples"] == {"train": 16, "val": 2,
                                                                         "test": 2}
    assert len(metrics["compare"]) == 2 and {"prompt", "reference", "base", "tuned"} <= set(
        metrics["compare"][0])
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2, 3] and all("sample" in h for h in history)
    folder = RunFolder.open(out)
    assert folder.is_language_model and folder.has_model and folder.status == "finished"
    assert folder.info["before"]["test_perplexity"] == test["perplexity_before"]
    settings = folder.settings()["language_model"]
    assert settings["lora_rank"] == 4 and settings["seed"] == 1
    with pytest.raises(RunError, match="fine-tuned a language model"):
        folder.load()  # the table commands refuse it in one sentence


def test_generate_export_and_resume_of_a_finished_run(lora_run, tmp_path):
    out, _ = lora_run
    said = run_cli("generate", str(out), "--prompt", "Name a colour.", "--temperature", "0",
                   "--max-new-tokens", "8")
    assert said.returncode == 0, said.stderr
    model, tokenizer, _ = load_tuned(out, "cpu")
    from ml.evaluation.generate import Sampling, generate

    assert said.stdout.rstrip("\n") == generate(model, tokenizer, "Name a colour.",
                                                Sampling(max_new_tokens=8, temperature=0))
    again = run_cli("train", "--resume", str(out))
    assert again.returncode == 0 and "nothing to do" in again.stdout

    merged = tmp_path / "merged"
    done = run_cli("export", str(out), "--format", "hf", "--out", str(merged))
    assert done.returncode == 0, done.stderr
    from transformers import AutoModelForCausalLM

    ids = torch.tensor([[1, 5, 9, 12, 40]])
    loaded = AutoModelForCausalLM.from_pretrained(str(merged), local_files_only=True).eval()
    model, _, _ = load_tuned(out, "cpu")
    with torch.no_grad():
        gap = (loaded(input_ids=ids).logits - model(input_ids=ids).logits).abs().max()
    assert float(gap) < 1e-4
    adapter = tmp_path / "adapter"
    assert run_cli("export", str(out), "--format", "adapter", "--out", str(adapter)
                   ).returncode == 0
    assert (adapter / "adapter_config.json").is_file()
    assert (adapter / "adapter_model.safetensors").is_file()
    refused = run_cli("export", str(out), "--format", "onnx", "--out", str(tmp_path / "m.onnx"))
    assert refused.returncode == 2 and "--format hf" in refused.stderr


def test_the_report_has_the_before_after_table_the_curves_and_a_pdf(lora_run, tmp_path):
    out, _ = lora_run
    done = run_main("export", str(out), "--format", "report", "--out", str(tmp_path / "r"))
    assert done.returncode == 0, done.stderr
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    metrics = json.loads((out / "metrics.json").read_text())
    from ml.evaluation.lm_report import perplexity_text

    for value in (metrics["test"]["perplexity"], metrics["test"]["perplexity_before"]):
        assert perplexity_text(value) in page
    for title in ("Summary", "Data and model", "Training", "The same questions, before and "
                  "after", "What it answered after each epoch", "Reproducibility"):
        assert f"<h2>{title}</h2>" in page
    assert page.count("data:image/png;base64,") == 2  # loss and perplexity, in the page
    assert metrics["compare"][0]["tuned"].split()[0] in page
    assert (tmp_path / "r.pdf").read_bytes()[:5] == b"%PDF-"
    html_only = run_main("export", str(out), "--format", "report", "--no-pdf", "--out",
                         str(tmp_path / "only.html"))
    assert html_only.returncode == 0 and not (tmp_path / "only.pdf").exists()


def _weights(run_dir):
    return RunFolder.open(run_dir).load_weights(LM_WEIGHTS)


def test_a_stopped_run_resumes_to_the_weights_of_one_never_stopped(tiny_llama, chat_file,
                                                                   tmp_path):
    config = _config(tiny_llama, epochs=3, lora_dropout=0.1)
    whole = CausalLMJob(config, str(chat_file), run_dir=tmp_path / "whole").run()
    assert whole.status == "finished"

    job = CausalLMJob(_config(tiny_llama, epochs=3, lora_dropout=0.1), str(chat_file),
                      run_dir=tmp_path / "cut")
    job.on_epoch = lambda epoch, logs: job.request_stop() if epoch == 0 else None
    cut = job.run()
    assert cut.status == "stopped" and len(cut.history) == 1
    assert RunFolder.open(tmp_path / "cut").status == "stopped"
    done = CausalLMJob.resume(tmp_path / "cut").run()
    assert done.status == "finished" and [h["epoch"] for h in done.history] == [1, 2, 3]
    a, b = _weights(tmp_path / "whole"), _weights(tmp_path / "cut")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert done.metrics["test"] == whole.metrics["test"]
    assert [h["sample"] for h in done.history] == [h["sample"] for h in whole.history]


def test_a_stop_while_the_model_is_read_writes_nothing(tiny_llama, chat_file, tmp_path):
    job = CausalLMJob(_config(tiny_llama), str(chat_file), run_dir=tmp_path / "run")
    job.request_stop()
    with pytest.raises(Cancelled):
        job.run()
    assert not (tmp_path / "run").exists()


def test_a_stop_while_the_base_model_answers_keeps_no_cut_answer(tiny_llama, chat_file,
                                                                 tmp_path):
    job = CausalLMJob(_config(tiny_llama, epochs=1), str(chat_file), run_dir=tmp_path / "run")
    job.say = lambda text: job.request_stop() if text.startswith("measuring") else None
    assert job.run().status == "stopped"
    folder = RunFolder.open(tmp_path / "run")
    assert folder.status == "stopped" and "before" not in folder.info
    assert not folder.read_history()
    resumed = CausalLMJob.resume(tmp_path / "run")
    statuses = []
    resumed.on_epoch = lambda epoch, logs: statuses.append(RunFolder.open(tmp_path / "run").status)
    done = resumed.run()
    assert statuses == ["running"] and done.status == "finished"
    assert RunFolder.open(tmp_path / "run").info["before"]["answers"]


def test_a_stop_while_the_tuned_model_answers_leaves_the_run_to_finish(tiny_llama, chat_file,
                                                                        tmp_path):
    whole = CausalLMJob(_config(tiny_llama, epochs=2), str(chat_file),
                        run_dir=tmp_path / "whole").run()
    job = CausalLMJob(_config(tiny_llama, epochs=2), str(chat_file), run_dir=tmp_path / "cut")
    job.on_epoch = lambda epoch, logs: job.request_stop() if epoch == 1 else None
    cut = job.run()
    assert cut.status == "stopped" and len(cut.history) == 2
    assert not (tmp_path / "cut" / "metrics.json").exists()
    done = CausalLMJob.resume(tmp_path / "cut").run()
    assert done.status == "finished" and len(done.history) == 2
    assert done.metrics["compare"] == whole.metrics["compare"]
    assert done.metrics["test"] == whole.metrics["test"]
    assert done.metrics["tokens_per_second"] > 0


def test_more_epochs_asked_of_a_resume_are_recorded_only_once_it_can_go_on(
        tiny_llama, tmp_path):
    data = tmp_path / "chat.jsonl"
    data.write_text("".join(json.dumps({"messages": [
        {"role": "user", "content": q}, {"role": "assistant", "content": a}]}) + "\n"
        for q, a in PAIRS * 2), encoding="utf-8")
    job = CausalLMJob(_config(tiny_llama, epochs=1), str(data), run_dir=tmp_path / "run")
    assert job.run().status == "finished"
    resumed = CausalLMJob.resume(tmp_path / "run", epochs=3)
    data.unlink()
    with pytest.raises(DataError):
        resumed.run()
    folder = RunFolder.open(tmp_path / "run")
    assert folder.settings()["language_model"]["epochs"] == 1
    assert not any("epochs" in str(c) for c in folder.info.get("changes", []))


def test_full_fine_tuning_exports_a_model_folder_and_has_no_adapter(tiny_gpt2, chat_file,
                                                                    tmp_path):
    result = CausalLMJob(_config(tiny_gpt2, mode="full", lr=3e-3, epochs=2), str(chat_file),
                         run_dir=tmp_path / "full").run()
    assert result.metrics["test"]["perplexity"] < result.metrics["test"]["perplexity_before"]
    names = _weights(tmp_path / "full").keys()
    assert not any("lora_" in n for n in names) and len(names) > 10
    no = run_cli("export", str(tmp_path / "full"), "--format", "adapter", "--out",
                 str(tmp_path / "ad"))
    assert no.returncode == 2 and "every weight" in no.stderr and not (tmp_path / "ad").exists()
    assert run_cli("export", str(tmp_path / "full"), "--format", "hf", "--out",
                   str(tmp_path / "hf")).returncode == 0
    base = run_cli("generate", str(tmp_path / "full"), "--prompt", "hi", "--base")
    assert base.returncode == 2 and "every weight" in base.stderr


def test_a_nan_loss_goes_back_an_epoch_at_half_the_rate(tiny_llama, chat_file, tmp_path,
                                                        monkeypatch):
    from ml.training import causal

    real, calls = causal.token_nll, [0]

    def once_nan(model, x, y, mask, autocast=None):
        nll, n = real(model, x, y, mask, autocast)
        calls[0] += model.training
        return (nll * float("nan"), n) if calls[0] == 3 and model.training else (nll, n)

    monkeypatch.setattr(causal, "token_nll", once_nan)
    messages = []
    result = CausalLMJob(_config(tiny_llama), str(chat_file), run_dir=tmp_path / "nan",
                         on_message=messages.append).run()
    assert result.status == "finished" and len(result.history) == 3
    info = RunFolder.open(tmp_path / "nan").info
    assert info["lr_now"] == pytest.approx(1.5e-2) and len(info["recovered"]) == 1
    assert any("going back to epoch" in m for m in messages)


def test_a_loss_that_stays_nan_fails_with_advice(tiny_llama, chat_file, tmp_path, monkeypatch):
    from ml.training import causal

    monkeypatch.setattr(causal, "token_nll", lambda m, x, y, k, a=None: (
        torch.tensor(float("nan"), requires_grad=True), torch.tensor(3)))
    with pytest.raises(TrainingError, match="Lower the learning rate"):
        CausalLMJob(_config(tiny_llama), str(chat_file), run_dir=tmp_path / "nan").run()
    assert RunFolder.open(tmp_path / "nan").status == "failed"


def _bad_model_folders(tmp_path, tiny_llama, tiny_bert):
    import shutil

    no_tok = tmp_path / "no-tokenizer"
    shutil.copytree(tiny_llama, no_tok)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (no_tok / name).unlink()
    remote = tmp_path / "remote"
    shutil.copytree(tiny_llama, remote)
    config = json.loads((remote / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling.MyModel"}
    (remote / "config.json").write_text(json.dumps(config))
    return {"not a causal language model": tiny_bert, "no tokenizer": no_tok,
            "own Python code": remote}


def test_bad_models_and_data_get_one_line_and_write_nothing(tiny_llama, tiny_bert, chat_file,
                                                            tmp_path):
    import shutil

    cases = {why: (folder, chat_file) for why, folder in
             _bad_model_folders(tmp_path, tiny_llama, tiny_bert).items()}
    broken = tmp_path / "broken.jsonl"
    broken.write_text("{not json\n" + json.dumps({"messages": [{"role": "user",
                                                                 "content": "hi"}]}) + "\n")
    cases["no usable example"] = (tiny_llama, broken)
    roles = tmp_path / "roles.jsonl"
    roles.write_text("".join(json.dumps({"messages": [
        {"role": "tool", "content": "x"}, {"role": "assistant", "content": "y"}]}) + "\n"
        for _ in range(6)))
    cases["role"] = (tiny_llama, roles)
    strict = tmp_path / "no-system"  # a template that refuses system turns, as Gemma's does
    shutil.copytree(tiny_llama, strict)
    template = (strict / "chat_template.jinja").read_text()
    (strict / "chat_template.jinja").write_text(
        "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not "
        "supported') }}{% endif %}" + template)
    system = tmp_path / "system.jsonl"
    system.write_text("".join(json.dumps({"messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": q},
        {"role": "assistant", "content": a}]}) + "\n" for q, a in PAIRS * 2))
    cases["System role not supported"] = (strict, system)
    few = tmp_path / "few.jsonl"
    few.write_text(chat_file.read_text().splitlines()[0] + "\n")
    cases["at least 5"] = (tiny_llama, few)
    for i, (why, (model, data)) in enumerate(cases.items()):
        out = tmp_path / f"run{i}"
        done = run_cli("train", "--task", "causal-lm", "--backbone", str(model), "--data",
                       str(data), "--out", str(out))
        assert done.returncode == 2, (why, done.stderr)
        assert why in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert not out.exists(), why


def test_a_model_that_will_not_fit_is_refused_with_the_numbers(tiny_llama, chat_file, tmp_path,
                                                              monkeypatch):
    monkeypatch.setattr(job_module, "available_memory", lambda: 1000)
    done = run_cli("train", "--task", "causal-lm", "--backbone", str(tiny_llama), "--data",
                   str(chat_file), "--mode", "full", "--out", str(tmp_path / "run"))
    assert done.returncode == 2 and "needs about" in done.stderr and "1.0 KB free" in done.stderr
    assert not (tmp_path / "run").exists()


def test_options_of_other_models_and_a_changed_base_model_are_refused(lora_run, tiny_llama,
                                                                      chat_file, tmp_path):
    wrong = run_cli("train", "--task", "causal-lm", "--backbone", str(tiny_llama), "--data",
                    str(chat_file), "--target", "y")
    assert wrong.returncode == 2 and "--target does not apply" in wrong.stderr
    mode = run_cli("train", "--task", "causal-lm", "--backbone", str(tiny_llama), "--data",
                   str(chat_file), "--mode", "probe")
    assert mode.returncode == 2 and "--mode lora or --mode full" in mode.stderr
    import shutil

    out, _ = lora_run
    moved = tmp_path / "run"
    shutil.copytree(out, moved)
    base = tmp_path / "base"
    shutil.copytree(tiny_llama, base)
    doc = json.loads((moved / "config.json").read_text())
    doc["language_model"]["backbone"] = str(base)
    (moved / "config.json").write_text(json.dumps(doc))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert run_cli("generate", str(moved), "--prompt", "hi", "--max-new-tokens", "2"
                       ).returncode == 0  # an identical copy of the base model will do
    (base / "config.json").write_text((base / "config.json").read_text().replace(
        "}", ', "note": 1}', 1))
    changed = run_cli("generate", str(moved), "--prompt", "hi")
    assert changed.returncode == 2 and "other weights" in changed.stderr


def test_a_language_model_folder_joins_the_model_library(tiny_llama, tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINDESK_HOME", str(tmp_path / "home"))
    added = run_cli("models", "--add", str(tiny_llama))
    assert added.returncode == 0 and "--task causal-lm --backbone" in added.stdout
    listed = run_cli("models")
    line = next(row for row in listed.stdout.splitlines() if str(tiny_llama) in row)
    assert "language model" in line and "for LoRA (batch of 4" in line


@pytest.mark.requires_cuda
def test_on_a_gpu_the_run_trains_under_autocast(tiny_llama, chat_file, tmp_path):
    config = _config(tiny_llama, device="cuda", precision="auto")
    result = CausalLMJob(config, str(chat_file), run_dir=tmp_path / "gpu").run()
    assert result.status == "finished"
    assert result.metrics["test"]["perplexity"] < result.metrics["test"]["perplexity_before"]
    for precision in ("bf16", "fp16"):
        if precision == "bf16" and not torch.cuda.is_bf16_supported():
            continue
        again = CausalLMJob(_config(tiny_llama, device="cuda", precision=precision, epochs=1),
                            str(chat_file), run_dir=tmp_path / precision).run()
        assert again.status == "finished" and again.metrics["tokens_per_second"] > 0


def test_half_precision_on_the_cpu_is_refused_before_anything_is_written(tiny_llama, chat_file,
                                                                        tmp_path):
    done = run_cli("train", "--task", "causal-lm", "--backbone", str(tiny_llama), "--data",
                   str(chat_file), "--precision", "bf16", "--device", "cpu", "--out",
                   str(tmp_path / "run"))
    assert done.returncode == 2 and "needs a CUDA GPU" in done.stderr
    assert not (tmp_path / "run").exists()
