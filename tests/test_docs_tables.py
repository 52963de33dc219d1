"""README and docs tables come from a results directory (aqbench tables-for-docs), with where they came from."""

import json

import pytest
from test_report import seeds, summary_csv

from aqbench.errors import AqbenchError
from aqbench.report.docs_tables import update

MACHINE = {"cpu": "Test CPU", "cores": 2, "threads": 1, "torch": "2.13.0", "blas": "mkl", "cuda": None}


@pytest.fixture
def results(tmp_path):
    rows = (
        seeds("sst2", "fp", "fp32", [94.0], 1.0)
        + seeds("sst2", "lq", "w2", [78.25], 0.1)
        + seeds("mnli", "fp", "fp32", [81.5], 1.0, metric="accuracy_m")
        + seeds("mnli", "lq", "w2", [72.0], 0.1, metric="accuracy_m")
    )
    out = tmp_path / "results"
    out.mkdir()
    summary_csv(tmp_path, rows, name="results/summary.csv")
    prov = {"commits": ["abc123"], "machines": [MACHINE], "configs": ["config/config.yaml"], "runs": 4}
    (out / "provenance.json").write_text(json.dumps(prov))
    return out


def test_blocks_are_regenerated_in_place_with_their_provenance(results, tmp_path):
    page = tmp_path / "README.md"
    block = "<!-- tables-for-docs main rows=fp:fp32,lq:w2 -->\nold, typed by hand\n<!-- /tables-for-docs -->\n"
    page.write_text("# Title\n\nbefore\n\n" + block + "\nafter\n")
    assert update(results, [page]) == {str(page): 1}
    text = page.read_text()
    assert text.startswith("# Title\n\nbefore\n\n<!-- tables-for-docs main rows=fp:fp32,lq:w2 -->\n")
    assert text.endswith("<!-- /tables-for-docs -->\n\nafter\n") and "typed by hand" not in text
    assert "| run | bits / weight | SST-2 accuracy | MNLI accuracy_m |" in text
    assert "| lq w2 | 2.00 | 78.25 | 72.00 |" in text
    assert (
        "commit abc123, config config/config.yaml, on Test CPU (2 cores, 1 torch threads, torch 2.13.0, BLAS mkl)"
        in text
    )
    update(results, [page])
    assert page.read_text() == text  # a second run changes nothing


def test_a_block_naming_a_run_that_does_not_exist_fails_and_leaves_the_page(results, tmp_path):
    page = tmp_path / "results.md"
    original = "<!-- tables-for-docs main rows=gptq:w2 -->\nx\n<!-- /tables-for-docs -->\n"
    page.write_text(original)
    with pytest.raises(AqbenchError, match="no run gptq w2"):
        update(results, [page])
    assert page.read_text() == original


def test_aggregate_writes_the_runs_commits_machines_and_configs(tmp_path):
    from test_report import record

    from aqbench.report.aggregate import aggregate

    paths = []
    for i, (commit, cpu) in enumerate([("abc", "A"), ("abc", "A"), ("def+dirty", "B")]):
        r = {**record("sst2", "lq", f"w{8 - i}", 0, {"accuracy": 90.0}, "accuracy", 1.0), "commit": commit}
        r["machine"] = {**MACHINE, "cpu": cpu}
        p = tmp_path / f"run{i}" / "metrics.json"
        p.parent.mkdir()
        p.write_text(json.dumps(r))
        paths.append(p)
    aggregate(paths, tmp_path / "summary.csv", configs=["config/ci.yaml"])
    prov = json.loads((tmp_path / "provenance.json").read_text())
    assert prov["commits"] == ["abc", "def+dirty"] and [m["cpu"] for m in prov["machines"]] == ["A", "B"]
    assert prov["configs"] == ["config/ci.yaml"] and prov["runs"] == 3


def test_every_metrics_record_says_which_machine_and_commit_made_it():
    from aqbench.versions import commit, machine

    m = machine()
    assert m["cpu"] and m["threads"] >= 1 and m["torch"].startswith("2.") and "blas" in m
    c = commit()
    assert c is None or len(c.split("+")[0]) == 40


def test_a_block_can_name_another_results_directory_and_without_update_every_block_is_printed(results, tmp_path):
    from aqbench.report.docs_tables import every_block

    other = tmp_path / "other"
    other.mkdir()
    summary_csv(tmp_path, seeds("sst2", "fp", "fp32", [79.36], 1.0), name="other/summary.csv")
    (other / "provenance.json").write_text((results / "provenance.json").read_text())
    page = tmp_path / "page.md"
    page.write_text(f"<!-- tables-for-docs main rows=fp:fp32 results={other} -->\n<!-- /tables-for-docs -->\n")
    update(results, [page])
    assert "| fp fp32 | 32.00 | 79.36 |" in page.read_text() and f"tables-for-docs {other}`" in page.read_text()
    # --only: the blocks of one results directory are regenerated, the others' are left as they are
    kept = "<!-- tables-for-docs main rows=fp:fp32 -->\nkept as it was\n<!-- /tables-for-docs -->\n"
    page.write_text(kept + page.read_text().replace("79.36", "11.11"))
    assert update(other, [page], only=True) == {str(page): 1}
    assert page.read_text().startswith(kept) and "79.36" in page.read_text() and "11.11" not in page.read_text()
    printed = every_block(results)
    assert (
        "<!-- tables-for-docs main rows=fp:fp32,lq:w2 -->" in printed and "<!-- tables-for-docs winners -->" in printed
    )


def block_with_an_aq_run(results, tmp_path, column, value, run_dir="runs/aq"):
    """The `column` block (tuned, converged) of the results plus an AQ-BERT run whose summary column is value (the
    other runs have none: no sweep, no search)."""
    header, *lines = (results / "summary.csv").read_text().splitlines()
    summary = [f"{header},{column}"] + [line + "," for line in lines]
    summary.append(f'sst2,bert,aq,b1.97,0,accuracy,90.0,True,0.05,1.97,8,8,0.1,{run_dir},"{value}"')
    (results / "summary.csv").write_text("\n".join(summary) + "\n")
    page = tmp_path / "page.md"
    page.write_text(f"<!-- tables-for-docs {column} -->\n<!-- /tables-for-docs -->\n")
    update(results, [page])
    return page.read_text()


def test_the_tuned_block_lists_each_sweeps_choice(results, tmp_path):
    run = tmp_path / "results" / "runs" / "sst2" / "bert" / "aq" / "b1.97" / "seed0"
    run.mkdir(parents=True)
    choice = {
        "chosen": "size_weight=0.3",
        "metric": "accuracy",
        "trials": {"size_weight=0.1": 80.0, "size_weight=0.3": 85.0},
    }
    (run / "metrics.json").write_text(json.dumps({"tuning": choice}))
    page = block_with_an_aq_run(results, tmp_path, "tuned", "size_weight=0.3 of 2", run)
    assert "| sst2 | aq b1.97 | size_weight=0.3 | accuracy | 0.1: 80.00; 0.3: 85.00 | 90.00 |" in page


def test_the_converged_block_says_how_far_each_search_got(results, tmp_path):
    from aqbench.report.aggregate import converged

    search = {"budget_mb": 2.0, "expected_mb": 2.02, "epsilon": 0.02, "argmax_mb": 1.9, "steps_down": 0, "steps_up": 12}
    text = converged(search)
    assert text == "E[size] 1.010 V (in the 2% band), argmax 0.950 V, repair 0 steps down, 12 up"
    assert "(outside the 2% band)" in converged({**search, "expected_mb": 2.1}) and converged(None) is None
    assert f"| sst2 | aq b1.97 | 0 | {text} |" in block_with_an_aq_run(results, tmp_path, "converged", text)


def test_the_selected_block_says_which_training_lengths_the_tuning_split_kept(results, tmp_path):
    from aqbench.evaluate import selected_lengths
    from aqbench.report.aggregate import selected

    finetune = {"every": "epoch", "steps_per_epoch": 250, "metric": "accuracy", "chosen_step": 500}
    finetune["scores"] = {"250": 88.0, "500": 90.1, "750": 89.5}
    qat = {"every": 50, "steps_per_epoch": 450, "metric": "accuracy", "chosen_step": 150}
    qat["scores"] = {"50": 80.0, "100": 84.0, "150": 85.2, "200": 85.2}
    chosen = selected_lengths({"train": {"selection": finetune}}, {"qat": qat and {"selection": qat}})
    assert chosen == {"finetune": finetune, "qat": qat}
    assert selected_lengths({"train": {}}, {}) is None and selected(None) is None
    text = selected(chosen)
    assert text == "fine-tuning: epoch 2 of 3 (accuracy 90.1); QAT: step 150 of 200 (accuracy 85.2)"
    assert selected({"qat": qat}) == "QAT: step 150 of 200 (accuracy 85.2)"
    assert f"| sst2 | aq b1.97 | 0 | {text} |" in block_with_an_aq_run(results, tmp_path, "selected", text)


def test_a_main_block_with_mb_shows_each_runs_encoder_size(results, tmp_path):
    page = tmp_path / "page.md"
    page.write_text("<!-- tables-for-docs main rows=fp:fp32,lq:w2 mb=yes -->\n<!-- /tables-for-docs -->\n")
    update(results, [page])
    assert "| run | bits / weight | encoder MB | SST-2 accuracy | MNLI accuracy_m |" in page.read_text()
    assert "| lq w2 | 2.00 | 0.10 | 78.25 | 72.00 |" in page.read_text()


def test_a_main_block_with_also_puts_a_tasks_other_metric_beside_its_main_one(results, tmp_path):
    from test_report import SUMMARY_HEADER

    summary = results / "summary.csv"
    lines = summary.read_text().splitlines(keepends=True)
    squad = [  # SQuAD's F1 is its main metric; EM is reported beside it; SST-2 has no exact_match
        f"squad,bert,{m},{b},0,{metric},{v},{metric == 'f1'},1.0,{bits},8,8,0.0,{tmp_path}/r/{m}\n"
        for m, b, bits, metric, v in [
            ("fp", "fp32", 32.0, "f1", 80.5),
            ("fp", "fp32", 32.0, "exact_match", 70.25),
            ("lq", "w2", 2.0, "f1", 10.0),
            ("lq", "w2", 2.0, "exact_match", 5.5),
        ]
    ]
    assert lines[0] == SUMMARY_HEADER
    summary.write_text("".join(lines + squad))
    page = tmp_path / "page.md"
    page.write_text("<!-- tables-for-docs main rows=fp:fp32,lq:w2 also=exact_match -->\n<!-- /tables-for-docs -->\n")
    update(results, [page])
    text = page.read_text()
    assert "| run | bits / weight | SST-2 accuracy | MNLI accuracy_m | SQuAD exact_match | SQuAD f1 |" in text
    assert "| lq w2 | 2.00 | 78.25 | 72.00 | 5.50 | 10.00 |" in text
