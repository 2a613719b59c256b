"""A language-model project from the app: examples and model chosen, settings on the Model
step, fine-tuning with a sample answer each epoch, perplexity and answers side by side, a
streamed try-it answer, the exports and the report, and the project opened again."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt

PAIRS = [("What is two plus two?", "Four."), ("Name a colour.", "Blue."),
         ("What is the capital of France?", "Paris."), ("hello there, how are you?",
                                                       "I am fine, thank you.")]


@pytest.fixture
def chat_file(tmp_path):
    path = tmp_path / "chat.jsonl"
    path.write_text("".join(json.dumps({"messages": [
        {"role": "user", "content": q}, {"role": "assistant", "content": a}]}) + "\n"
        for q, a in PAIRS * 5), encoding="utf-8")
    return path


def _choose(qtbot, window, user, chat_file, model) -> None:
    window.new_language_model_project()
    assert window.pages.currentWidget() is window.lm_data_page
    user.open_paths.append(str(chat_file))
    qtbot.mouseClick(window.lm_data_page.choose_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.state.lm_data is not None, timeout=20_000)
    assert "20" in window.lm_data_page.summary.text()
    assert window.go_to(1) and window.pages.currentWidget() is window.lm_model_page
    user.open_paths.append(str(model))
    qtbot.mouseClick(window.lm_model_page.choose_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.state.lm_model is not None, timeout=20_000)


def _train(qtbot, window) -> None:
    page = window.lm_model_page
    page.epochs_spin.setValue(2)
    page.lr_spin.setValue(0.03)
    page.length_spin.setValue(64)
    assert window.go_to(2)
    qtbot.mouseClick(window.lm_train_page.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.lm_train_page.is_training(), timeout=120_000)


def test_fine_tune_a_language_model_from_the_app(qtbot, window, user, chat_file, tiny_llama,
                                                 tmp_path):
    _choose(qtbot, window, user, chat_file, tiny_llama)
    page = window.lm_model_page
    assert "parameters" in page.about.text() and "LoRA about" in page.memory.text()
    page.fill_library()  # the chosen folder joined the model library
    assert any("tiny-llama" in page.library_combo.itemText(i)
               for i in range(page.library_combo.count()))
    qtbot.waitUntil(lambda: "tokens are learned from" in window.lm_data_page.tokens_label.text(),
                    timeout=20_000)
    page.mode_combo.setCurrentIndex(page.mode_combo.findData("full"))
    assert window.state.project.language_model.mode == "full"
    assert not page.rank_spin.isEnabled()
    page.mode_combo.setCurrentIndex(page.mode_combo.findData("lora"))
    _train(qtbot, window)
    train = window.lm_train_page
    assert not user.errors, user.errors
    assert "Finished: test perplexity" in train.banner.text()
    assert "Epoch 2:" in train.samples.toPlainText()
    assert train.perplexity_curve.getData()[0] is not None
    # every step's loss reached the page (throttled), ending at the last epoch's end
    assert len(train.steps) >= 2 and train.steps[-1][0] == pytest.approx(2.0)
    assert len(train.batch_curve.getData()[0]) == len(train.steps)
    run = window.state.current_run
    assert run is not None and run.record.task == "causal-lm"

    assert window.go_to(3)
    evaluate = window.lm_evaluate_page
    assert evaluate.perplexity_table.item(1, 0).text() and evaluate.compare_table.rowCount() == 2
    evaluate.prompt_edit.setPlainText("Name a colour.")
    evaluate.temperature_spin.setValue(0.0)
    evaluate.tokens_spin.setValue(8)
    qtbot.mouseClick(evaluate.ask_button, Qt.MouseButton.LeftButton)
    assert not evaluate.ask_button.isEnabled()  # one answer at a time
    qtbot.waitUntil(lambda: not evaluate.runner.is_running(), timeout=60_000)
    assert evaluate.ask_button.isEnabled()
    from ml.evaluation.generate import Sampling, generate
    from ml.jobs.causal import load_tuned

    model, tokenizer, _ = load_tuned(run.path, "cpu")
    expected = generate(model, tokenizer, "Name a colour.", Sampling(max_new_tokens=8,
                                                                     temperature=0))
    assert evaluate.loaded is not None and evaluate.conversation[-1]["content"] == expected
    assert evaluate.answer.toPlainText() == f"You: Name a colour.\n\nFine-tuned model: {expected}"
    evaluate.prompt_edit.setPlainText("And another?")  # a second turn sees the first
    evaluate.base_check.setChecked(True)
    qtbot.mouseClick(evaluate.ask_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not evaluate.runner.is_running(), timeout=60_000)
    assert [t["role"] for t in evaluate.conversation] == ["user", "assistant"] * 2
    assert "Base model: " in evaluate.answer.toPlainText()
    qtbot.mouseClick(evaluate.new_button, Qt.MouseButton.LeftButton)
    assert not evaluate.conversation and not evaluate.answer.toPlainText()
    evaluate.prompt_edit.setPlainText("What is two plus two?")  # cut short by a new start:
    evaluate.tokens_spin.setValue(64)
    qtbot.mouseClick(evaluate.ask_button, Qt.MouseButton.LeftButton)
    cancelled = evaluate.runner.worker
    qtbot.mouseClick(evaluate.new_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: cancelled.thread().isFinished(), timeout=60_000)
    qtbot.wait(100)  # its last queued pieces arrive, and are dropped
    assert not evaluate.answer.toPlainText() and evaluate.ask_button.isEnabled()

    assert window.go_to(4)
    export = window.lm_export_page
    for button, out in ((export.merged_button, tmp_path / "merged"),
                        (export.adapter_button, tmp_path / "adapter")):
        user.open_paths.append(str(out))
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not export.runner.is_running(), timeout=60_000)
        assert "Saved" in export.banner.text(), export.banner.text()
    assert (tmp_path / "merged" / "config.json").is_file()
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()
    user.save_paths.append(str(tmp_path / "report.html"))
    qtbot.mouseClick(export.report_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not export.runner.is_running(), timeout=30_000)
    report = (tmp_path / "report.html").read_text()
    assert "perplexity went from" in report and "The same questions, before and after" in report
    assert (tmp_path / "report.pdf").is_file() and "report.pdf" in export.banner.text()

    project = window.state.project.save(tmp_path / "chat.tdproj")
    window.state.set_dirty(False)
    window.new_project()
    assert window.pages.currentWidget() is window.data_page
    assert window.open_project(project)
    qtbot.waitUntil(lambda: window.state.lm_data is not None
                    and window.state.lm_model is not None, timeout=20_000)
    assert window.pages.currentWidget() is window.lm_data_page
    assert window.state.step_enabled(3) and window.state.current_run.record.task == "causal-lm"


def test_a_folder_that_is_not_a_causal_lm_is_refused_on_the_model_step(qtbot, window, user,
                                                                        chat_file, tiny_bert):
    window.new_language_model_project()
    window.lm_data_page.load(str(chat_file))
    qtbot.waitUntil(lambda: window.state.lm_data is not None, timeout=20_000)
    window.go_to(1)
    window.lm_model_page.load(str(tiny_bert))
    qtbot.waitUntil(lambda: bool(window.state.lm_model_error), timeout=20_000)
    assert "not a causal language model" in window.lm_model_page.banner.text()
    assert not window.state.step_enabled(2) and not window.go_to(2)


def test_a_stopped_fine_tuning_resumes_from_the_train_step(qtbot, window, user, chat_file,
                                                           tiny_llama):
    _choose(qtbot, window, user, chat_file, tiny_llama)
    window.lm_model_page.epochs_spin.setValue(3)
    window.go_to(2)
    train = window.lm_train_page
    stopped = []

    def stop_after_first(logs):
        if not stopped:
            stopped.append(logs["epoch"])
            train.stop()

    qtbot.mouseClick(train.start_button, Qt.MouseButton.LeftButton)
    train.runner.worker.epoch_finished.connect(stop_after_first)
    # listed as running while it trains, so a killed app's project still knows the run
    qtbot.waitUntil(lambda: [r.status for r in window.state.project.runs] == ["running"],
                    timeout=60_000)
    qtbot.waitUntil(lambda: not train.is_training(), timeout=120_000)
    assert "Stopped after epoch 1" in train.banner.text()
    assert train.resume_button.isEnabled()
    qtbot.mouseClick(train.resume_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not train.is_training(), timeout=120_000)
    assert "Finished" in train.banner.text(), train.banner.text()
    text = train.samples.toPlainText()
    assert all(f"Epoch {i}:" in text for i in (1, 2, 3))
    assert len(window.state.project.runs) == 1  # the resumed run replaced its own entry


def test_a_full_run_has_no_base_switch_and_a_broken_run_folder_is_shown_as_nothing(
        qtbot, window, user, chat_file, tiny_gpt2, tmp_path):
    from ml.jobs.causal import CausalLMJob
    from ml.runs.project import LanguageModelConfig, RunRecord

    _choose(qtbot, window, user, chat_file, tiny_gpt2)
    config = LanguageModelConfig(backbone=str(tiny_gpt2), mode="full", epochs=1, lr=1e-3,
                                 batch_size=4, max_length=64)
    result = CausalLMJob(config, str(chat_file), run_dir=tmp_path / "full").run()
    record = RunRecord(id="full", path=str(result.run_dir), created="2026-01-01T00:00:00",
                       status="finished", task="causal-lm", name=result.name)
    window.state.add_run(record)
    assert window.go_to(3)
    evaluate = window.lm_evaluate_page
    assert evaluate.ask_button.isEnabled() and not evaluate.base_check.isEnabled()
    assert "tuned every weight" in evaluate.base_check.toolTip()

    (tmp_path / "full" / "run.json").write_text("{ broken", encoding="utf-8")
    window.state.add_run(record)  # the pages look again: nothing to show, nothing raised
    assert not evaluate.ask_button.isEnabled() and not evaluate.compare_table.rowCount()
    assert not window.lm_export_page.merged_button.isEnabled()
    assert not window.lm_train_page.resume_button.isEnabled()
    assert not user.errors, user.errors


def test_a_stop_while_the_model_is_read_keeps_nothing(qtbot, window, user, chat_file,
                                                      tiny_llama):
    _choose(qtbot, window, user, chat_file, tiny_llama)
    window.go_to(2)
    train = window.lm_train_page
    qtbot.mouseClick(train.start_button, Qt.MouseButton.LeftButton)
    train.stop()  # at once: the model and the examples are still being read
    qtbot.waitUntil(lambda: not train.is_training(), timeout=60_000)
    assert "nothing was saved" in train.banner.text() and not user.errors
    assert not window.state.project.runs and not train.resume_button.isEnabled()
    assert not any(window.state.project.runs_dir().glob("*/run.json"))
