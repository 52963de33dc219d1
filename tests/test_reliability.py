"""Nothing lost, nothing silent (docs/reliability.md): a failed rerun keeps the good result and runs again next time;
edited inputs rerun what they determine and settings that cannot change a result rerun nothing; the README's
command resumes after kill -9 or Ctrl-C; a damaged model directory or checkpoint is one line naming the file.

The workflow cases run Snakemake on one task's data and fine-tuning (a tiny model, seconds per job); the paths
in config reaching the shell quoted is checked by the whole CI DAG (tests/test_workflow.py runs it in a results
directory named `res dir $(touch PWNED)`).
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml
from conftest import REPO

SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "workflow" / "Snakefile"), "--cores", "1"]
CKPT = "r/models/sst2/bert/seed0"


def config(**train):
    return {
        "results": "r",
        "reports": "p",
        "tasks": ["sst2"],
        "methods": ["fp"],
        "seeds": [0],
        "data": {"source": "synthetic", "seed": 1, "synthetic": {"n_train": 200, "n_eval": 40}},
        "models": {
            "bert": {
                "source": "config",
                "tokenizer_vocab_size": 300,
                "architecture": {
                    "hidden_size": 32,
                    "num_hidden_layers": 2,
                    "num_attention_heads": 2,
                    "intermediate_size": 64,
                    "max_position_embeddings": 64,
                },
            }
        },
        "train": {"epochs": 1, "batch_size": 16, "lr": 1.0e-3, "max_length": 32, "device": "cpu", **train},
        "onnx": {"export": False},
    }


def snakemake(work, cfg, *args, timeout=600):
    path = work / f"config-{time.monotonic_ns()}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return subprocess.run(
        [*SNAKEMAKE, "-d", str(work), f"--configfile={path}", *args], capture_output=True, text=True, timeout=timeout
    )


def record(work):
    return json.loads((work / CKPT / "files.json").read_text())


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """One task's data and fine-tuned checkpoint, made by Snakemake."""
    work = tmp_path_factory.mktemp("reliability")
    done = snakemake(work, config(), CKPT)
    assert done.returncode == 0, done.stderr[-3000:]
    return work


@pytest.mark.e2e
def test_a_failed_rerun_keeps_the_checkpoint_says_so_and_runs_again_next_time(work):
    before = record(work)
    diverging = config(lr=1.0e6)
    failed = snakemake(work, diverging, CKPT)
    out = failed.stdout + failed.stderr
    assert failed.returncode != 0
    assert "the loss became" in out and f"the previous {CKPT} (from " in out and "is kept" in out, out[-3000:]
    assert record(work) == before  # the same files, byte for byte
    # Snakemake records a failed job's params as if it had succeeded; the failure record makes it run again
    plan = snakemake(work, diverging, "-n", CKPT)
    assert "rule finetune:" in plan.stdout + plan.stderr, (plan.stdout + plan.stderr)[-2000:]
    assert snakemake(work, config(), CKPT).returncode == 0  # back to the good settings: fine-tuned again


@pytest.mark.e2e
def test_the_evaluation_batch_size_reruns_no_fine_tuning(work):
    plan = snakemake(work, config(eval_batch_size=7), "-n", CKPT)
    assert plan.returncode == 0 and "Nothing to be done" in plan.stdout + plan.stderr, plan.stdout[-2000:]


@pytest.mark.e2e
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_after_kill_or_ctrl_c_the_same_command_resumes(work, sig):
    """A rerun (new settings) cut while its fine-tuning job runs: a stale lock and backup after kill -9, a Ctrl-C
    sent to the whole process group as a terminal does; the same command then finishes."""
    before = record(work)
    # long enough to be cut (about 25 s of training here), short enough to finish soon after
    cfg = config(lr=2.0e-3 if sig == signal.SIGKILL else 3.0e-3, epochs=150)
    path = work / f"cut-{sig.name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    command = [*SNAKEMAKE, "-d", str(work), f"--configfile={path}", CKPT]
    log = work / "r" / "logs" / "finetune" / "sst2" / "bert" / "seed0.log"
    log.unlink(missing_ok=True)
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    # cut once it trains: a fixed 4 s after the log appeared sometimes missed the job (seen twice today under load:
    # the job trained to the end); the stage itself answers SIGINT at any point of its start (checked by hand)
    deadline = time.time() + 120
    while not (log.is_file() and " steps of " in log.read_text()) and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(1)
    assert proc.poll() is None, proc.stdout.read()[-2000:]
    os.killpg(proc.pid, sig)
    cut = proc.communicate(timeout=120)[0]
    if sig == signal.SIGINT:
        assert "Traceback" not in log.read_text()
        assert "aqbench finetune: interrupted" in log.read_text(), log.read_text()[-1000:]
    assert record(work) == before, cut[-2000:]  # the previous checkpoint is whole
    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    if sig == signal.SIGKILL:
        assert "cleared the locks and output backups" in again.stderr
    assert record(work) != before  # fine-tuned with the new settings


@pytest.mark.e2e
def test_editing_a_local_data_file_or_model_file_reruns_what_it_determines(tmp_path):
    from aqbench.cli import main

    data = tmp_path / "sst2"
    data.mkdir()
    rows = "".join(f"{'a good film' if i % 2 else 'a dull film'} {i}\t{i % 2}\n" for i in range(40))
    for name in ("train.tsv", "dev.tsv"):
        (data / name).write_text("sentence\tlabel\n" + rows)
    model = tmp_path / "model"
    corpus = tmp_path / "corpus.yaml"
    corpus.write_text(yaml.safe_dump({**config(), "data": {"source": "local", "local_dirs": {"sst2": str(data)}}}))
    assert (
        main(
            [
                "make-model",
                "--config",
                str(corpus),
                "--out",
                str(model),
                "--vocab-size",
                "200",
                "--architecture",
                json.dumps(
                    {
                        "hidden_size": 32,
                        "num_hidden_layers": 1,
                        "num_attention_heads": 2,
                        "intermediate_size": 64,
                        "max_position_embeddings": 64,
                    }
                ),
            ]
        )
        == 0
    )
    cfg = {
        **config(),
        "data": {"source": "local", "local_dirs": {"sst2": str(data)}},
        "models": {"bert": {"source": "local", "path": str(model)}},
    }
    done = snakemake(tmp_path, cfg, CKPT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Nothing to be done" in snakemake(tmp_path, cfg, "-n", CKPT).stdout

    with open(data / "dev.tsv", "a") as f:
        f.write("a fine film\t1\n")
    plan = snakemake(tmp_path, cfg, "-n", CKPT).stdout
    assert "rule prepare_data:" in plan and "rule finetune:" in plan
    assert snakemake(tmp_path, cfg, CKPT).returncode == 0

    edited = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**edited, "layer_norm_eps": 1e-6}))
    plan = snakemake(tmp_path, cfg, "-n", CKPT).stdout
    assert "rule finetune:" in plan and "rule prepare_data:" not in plan


# --- model directories and checkpoints, checked where they are read -------------------------------------------


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from aqbench.models import make_model_dir

    out = tmp_path_factory.mktemp("model") / "m"
    make_model_dir(
        out,
        ["a good film", "a dull film"] * 20,
        vocab_size=100,
        architecture={
            "hidden_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 64,
            "max_position_embeddings": 64,
        },
    )
    return out


def copy_dir(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_a_model_directory_without_tokenizer_files_stops_before_training(model_dir, tmp_path):
    from aqbench.errors import AqbenchError
    from aqbench.models import load_pretrained
    from aqbench.tasks import get_task

    bare = copy_dir(model_dir, tmp_path / "bare")
    for name in ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        (bare / name).unlink(missing_ok=True)
    with pytest.raises(AqbenchError, match=r"has no tokenizer \(tokenizer.json or vocab.txt\)"):
        load_pretrained(get_task("sst2"), str(bare))


def test_a_tokenizer_of_another_model_is_refused(model_dir, tmp_path):
    from aqbench.errors import AqbenchError
    from aqbench.models import load_pretrained
    from aqbench.tasks import get_task

    other = copy_dir(model_dir, tmp_path / "other")
    (other / "tokenizer.json").unlink()
    (other / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nfilm\n")
    with pytest.raises(AqbenchError, match=r"its tokenizer has 6 tokens but the model's vocab_size is \d+"):
        load_pretrained(get_task("sst2"), str(other))


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_damaged_safetensors_file_in_a_model_directory_is_one_line(model_dir, tmp_path, damage):
    from aqbench.errors import AqbenchError
    from aqbench.models import load_pretrained
    from aqbench.tasks import get_task

    bad = copy_dir(model_dir, tmp_path / "bad")
    weights = bad / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"<html>not found</html>")
    with pytest.raises(AqbenchError, match=rf"{weights}.*(truncated|not a readable safetensors file)"):
        load_pretrained(get_task("sst2"), str(bad))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A checkpoint written by the suite's finetune stage (tiny, a few steps)."""
    from aqbench.data import prepare
    from aqbench.finetune import finetune
    from aqbench.settings import Data
    from aqbench.tasks import get_task

    root = tmp_path_factory.mktemp("ckpt")
    task = get_task("sst2")
    prepare(
        task,
        Data.from_dict({"source": "synthetic", "seed": 1, "synthetic": {"n_train": 64, "n_eval": 16}}),
        root / "data",
    )
    spec = {
        "source": "config",
        "tokenizer_vocab_size": 200,
        "architecture": {
            "hidden_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 64,
            "max_position_embeddings": 64,
        },
    }
    finetune(
        task,
        root / "data",
        spec,
        # warm-up and clipping off, as the loop read them when they were left out
        {
            "epochs": 1,
            "batch_size": 16,
            "lr": 1e-3,
            "weight_decay": 0.0,
            "warmup_ratio": 0.0,
            "grad_clip": None,
            "max_length": 32,
            "device": "cpu",
        },
        0,
        root / "ckpt",
    )
    return root / "ckpt"


@pytest.mark.parametrize("damage", ["truncated", "same size, other bytes", "missing tokenizer"])
def test_a_corrupt_checkpoint_is_detected_when_it_is_read(checkpoint, tmp_path, damage):
    from aqbench.errors import AqbenchError
    from aqbench.models import load_checkpoint
    from aqbench.tasks import get_task

    task = get_task("sst2")
    load_checkpoint(task, checkpoint)  # whole: loads
    bad = copy_dir(checkpoint, tmp_path / "bad")
    weights = bad / "model.safetensors"
    data = bytearray(weights.read_bytes())
    if damage == "truncated":
        weights.write_bytes(data[:-100])
        pattern = rf"{weights} has {len(data) - 100} bytes, {len(data)} when it was written"
    elif damage == "same size, other bytes":
        data[-5] ^= 0xFF
        weights.write_bytes(bytes(data))
        pattern = rf"{weights} does not match the checksum recorded when it was written"
    else:
        (bad / "tokenizer.json").unlink()
        pattern = rf"{bad / 'tokenizer.json'} is missing"
    with pytest.raises(AqbenchError, match=pattern + rf".*Fix: delete {bad} and rerun snakemake"):
        load_checkpoint(task, bad)


def test_a_reused_checkpoint_is_read_once_handed_out_as_copies_and_read_again_when_rewritten(
    checkpoint, tmp_path, monkeypatch
):
    from aqbench import models
    from aqbench.errors import AqbenchError
    from aqbench.tasks import get_task

    task = get_task("sst2")
    reads = []
    read = models._read_checkpoint
    monkeypatch.setattr(models, "_read_checkpoint", lambda t, p: reads.append(p) or read(t, p))
    ckpt = copy_dir(checkpoint, tmp_path / "ckpt")
    with models.reusing_checkpoints():
        a, tok_a = models.load_checkpoint(task, ckpt)
        with torch.no_grad():
            next(a.parameters()).add_(1.0)  # a run quantizes its copy in place
        b, tok_b = models.load_checkpoint(task, ckpt)
        assert len(reads) == 1 and tok_a is tok_b
        fresh, _ = read(task, ckpt)
        for (name, x), y in zip(b.state_dict().items(), fresh.state_dict().values()):
            assert torch.equal(x, y), name  # the copy is the file's weights, untouched by a's change
        weights = ckpt / "model.safetensors"
        data = bytearray(weights.read_bytes())
        data[-5] ^= 0xFF
        weights.write_bytes(bytes(data))
        with pytest.raises(AqbenchError, match="does not match the checksum"):
            models.load_checkpoint(task, ckpt)  # rewritten: read and checked again
    models.load_checkpoint(task, checkpoint)
    models.load_checkpoint(task, checkpoint)
    assert len(reads) == 4  # outside the block every load reads


def test_ctrl_c_in_a_stage_is_one_line_and_exit_130(tmp_path):
    """The stage is interrupted while it works (here: preparing a large synthetic split)."""
    settings = json.dumps({"source": "synthetic", "seed": 1, "synthetic": {"n_train": 10_000_000, "n_eval": 10}})
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aqbench",
            "prepare",
            "--task",
            "sst2",
            "--settings",
            settings,
            "--out",
            str(tmp_path / "data"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == "aqbench prepare: interrupted; run the same command again to resume"
    assert not (tmp_path / "data").exists()


def test_a_snakemake_running_in_another_directory_does_not_keep_a_killed_runs_state(tmp_path):
    """The leftovers of a run killed here are cleared even while another Snakemake works elsewhere (another
    results tree, a test), and kept while one works here."""
    from aqbench.resume import clear_stale_state, other_snakemakes

    fake = tmp_path / "bin" / "snakemake"  # its argv names snakemake, as a real one's does
    fake.parent.mkdir()
    fake.write_text("import time\ntime.sleep(60)\n")
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    for d in (here, elsewhere):
        (d / ".snakemake" / "backups" / "r").mkdir(parents=True)
    stale = here / ".snakemake" / "backups" / "r" / "model.safetensors"
    for cwd, kept in ((here, True), (elsewhere, False)):
        stale.write_text("a killed job's backup")
        proc = subprocess.Popen([sys.executable, str(fake)], cwd=cwd)
        try:
            deadline = time.time() + 10
            while proc.pid not in (other_snakemakes() or []) and time.time() < deadline:
                time.sleep(0.05)
            assert (proc.pid in other_snakemakes(here)) == kept
            line = clear_stale_state(here / ".snakemake")
            assert stale.exists() == kept and ("hold(s) the state of another run" in line) == kept
        finally:
            proc.kill()
            proc.wait()
