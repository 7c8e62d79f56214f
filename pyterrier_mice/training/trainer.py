"""One trainer for every model type, on accelerate (CPU, one GPU, or several), with validation,
best/final checkpoints and resumable runs."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import time
import warnings

import ir_measures
import numpy as np
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from torch import nn
from transformers import get_linear_schedule_with_warmup

from ..progress import bar
from ..files import BUILDING, OLD, recover_replaced, remove_whole, replaced_whole, write_json
from ..evaluation.splits import record_validation
from ..rerankers.fusion import FUSION_FILE, choose_weight, with_first_stage
from ..models.prior import PRIOR_SCALE, Prior, equal_scale
from .config import EQUAL, ConfigError, TrainConfig
from .data import GroupData
from .losses import get_loss

CONFIG_FILE = "train_config.json"
#: a finished run's state (step, best, history), kept when its resumable checkpoint is removed
STATE_FILE = "trainer.json"


class PairScorer(nn.Module):
    """Wraps a re-ranker so that training goes through ``forward`` (as DDP requires)."""

    def __init__(self, reranker):
        super().__init__()
        self.model = reranker.model
        self._reranker = [reranker]  # not a submodule

    def forward(self, queries, docs):
        return self._reranker[0].training_scores(queries, docs)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _accelerator(cfg: TrainConfig) -> Accelerator:
    """An :class:`Accelerator` for ``cfg``. accelerate keeps one state per process and refuses a second
    precision; a notebook may train in bf16 and then in fp32, so a run that changes precision clears the
    state it left (the process group, under a distributed launch, is kept)."""
    state = AcceleratorState._shared_state
    if state and state.get("_mixed_precision", cfg.precision) != cfg.precision:
        AcceleratorState._reset_state(reset_partial_state=False)
    return Accelerator(mixed_precision=cfg.precision, cpu=(cfg.device == "cpu"))


class Trainer:
    """Trains ``reranker`` on ``data`` (a :class:`GroupData`); validates on ``validation``:
    ``(run, qrels)`` with ``run`` a first-stage frame with texts to re-rank."""

    def __init__(self, cfg: TrainConfig, reranker, data: GroupData, validation=None, out_of_domain=None):
        if cfg.auto_fields():
            raise ConfigError(
                f"{', '.join(cfg.auto_fields())}: 'auto' is sized to the collection by "
                "pyterrier_mice.training.run (sizing.resolve_auto); give the Trainer numbers"
            )
        self.cfg, self.reranker, self.data, self.validation = cfg, reranker, data, validation
        self.out_of_domain = out_of_domain  # (run, qrels) of another collection: measured, never chosen on
        self.loss_fn = get_loss(cfg.loss, cfg.temperature)
        self.measure = ir_measures.parse_measure(cfg.eval.measure)
        self.accelerator = _accelerator(cfg)
        reranker.device = self.accelerator.device
        reranker.model.to(self.accelerator.device).train()
        params = [p for p in reranker.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, eps=1e-8)
        self.scheduler = get_linear_schedule_with_warmup(self.optimizer, cfg.warmup, cfg.steps)
        self.scorer, self.optimizer, self.scheduler = self.accelerator.prepare(
            PairScorer(reranker), self.optimizer, self.scheduler
        )
        self.step, self.best = 0, None
        self.history: list[dict] = []
        self.fusion: dict | None = None  # the fusion weight chosen at the last validation, and at which step
        self.kept_prior: Prior | None = None  # model.prior_scale "equal": the prior (at scale 1) kept beside the model
        self.prior_choice: dict | None = None  # its scale measured at the last validation, and at which step
        self._prior_scores: dict = {}  # its scores of the validation and out-of-domain candidates (it is frozen)
        if cfg.model.prior_scale == EQUAL:
            if validation is None:
                raise ConfigError(
                    f"model.prior_scale={EQUAL!r} measures the prior's scale on validation queries, and this run has "
                    "none: set eval.split (e.g. holdout) or eval.path"
                )
            self.kept_prior = Prior.load(cfg.model.prior_path, 1.0, device=self.accelerator.device)

    # ------------------------------------------------------------------ paths
    def _path(self, *parts) -> str:
        return os.path.join(self.cfg.output_dir, *parts)

    def save_model(self, name: str) -> str:
        """The model and tokenizer, with the lengths it trained at (re-rankers use them by default);
        written whole or not at all (see :func:`replaced_whole`)."""
        path = self._path(name)
        if self.accelerator.is_main_process:
            model = self.accelerator.unwrap_model(self.scorer).model
            rr = self.reranker
            model.config.trained_lengths = {k: getattr(rr, k) for k in rr.length_options if getattr(rr, k, None)}
            prior = rr.prior if rr.prior is not None else self._kept_prior_now()
            try:
                with replaced_whole(path) as tmp:
                    if prior is not None:  # prior/ and the model config's prior_scale
                        prior.save(model, tmp)
                    model.save_pretrained(tmp)
                    rr.tokenizer.save_pretrained(tmp)
                    if self.fusion is not None and self.fusion["step"] == self.step:
                        write_json(os.path.join(tmp, FUSION_FILE), self.fusion)
                    if self.validation is not None:  # the queries this checkpoint and its weight were chosen on
                        record_validation(tmp, *self.validation_source(), self.validation[0])
            finally:
                if rr.prior is None and hasattr(model.config, PRIOR_SCALE):  # the kept prior: this save's only
                    delattr(model.config, PRIOR_SCALE)
        return path

    def _kept_prior_now(self) -> Prior | None:
        """The kept prior (``model.prior_scale: equal``) at the scale measured at this step's validation, or None."""
        choice = self.prior_choice
        if self.kept_prior is None or choice is None or choice["step"] != self.step or choice["scale"] is None:
            return None
        return self.kept_prior.with_scale(choice["scale"])

    def _with_kept_prior(self, res, key: str, measure_scale: bool):
        """``res`` (the model's scores) with the kept prior's added at its scale, re-ranked; with
        ``measure_scale`` the scale is measured on ``res`` first (see :func:`equal_scale`)."""
        import pyterrier as pt

        if key not in self._prior_scores:
            scores = self.kept_prior.pair_scores(res["query"].tolist(), res[self.reranker.text_field].tolist())
            self._prior_scores[key] = res[["qid", "docno"]].assign(_prior=scores)
        res = res.merge(self._prior_scores[key], on=["qid", "docno"], how="left")
        if measure_scale:
            self.prior_choice = {
                "step": self.step,
                "scale": equal_scale(res["score"], res["_prior"], res["qid"]),
                "model_alone": self._measure(res, *self.validation),
            }
        scale = self.prior_choice["scale"] or 0.0
        res["score"] = res["score"] + scale * res["_prior"]
        return pt.model.add_ranks(res.drop(columns=["_prior", "rank"], errors="ignore"))

    def _validation_entry(self, value: float) -> dict:
        """What the curve records of a validation: its value, fused with the first stage, the model's
        alone and the kept prior's scale (``model.prior_scale: equal``), and out of domain."""
        entry = {"val": value, "val_fused": self.fusion["value"]}
        if self.prior_choice is not None:
            entry.update(val_model=self.prior_choice["model_alone"], prior_scale=self.prior_choice["scale"])
        return {**entry, **self.measure_out_of_domain()}

    def validation_source(self) -> tuple[str, str]:
        """The collection and split of the validation queries."""
        cfg = self.cfg
        if cfg.eval.split == "holdout":
            return cfg.data.path, cfg.data.split
        return cfg.eval.path or cfg.data.path, cfg.eval.split

    def check_config(self, resume_anyway: bool = False) -> None:
        if self.accelerator.is_main_process:
            check_run_config(self.cfg, resume_anyway)

    def save_checkpoint(self) -> None:
        """A resumable checkpoint: weights, optimizer, scheduler, RNG states, step and best; written
        whole beside the previous one, which it replaces only when complete (a kill or a full disk
        mid-save leaves the previous checkpoint as it was)."""
        path = self._path("checkpoint")
        with replaced_whole(path, main=self.accelerator.is_main_process) as tmp:
            self.accelerator.save_state(tmp)
            if self.accelerator.is_main_process:
                write_json(os.path.join(tmp, STATE_FILE), self._state())

    def resume(self) -> bool:
        path = self._path("checkpoint")
        recover_replaced(path)  # killed between the two renames of a save
        if not os.path.exists(os.path.join(path, STATE_FILE)):
            return False
        self.accelerator.load_state(path)
        with open(os.path.join(path, STATE_FILE)) as f:
            state = json.load(f)
        self.step, self.best, self.history = state["step"], state["best"], state["history"]
        # the schedule follows this config (lr, warmup, steps), also when resuming under a changed one
        for group in self.optimizer.param_groups:
            group["initial_lr"] = self.cfg.lr
        inner = get_linear_schedule_with_warmup(
            self.optimizer.optimizer if hasattr(self.optimizer, "optimizer") else self.optimizer,
            self.cfg.warmup,
            self.cfg.steps,
            last_epoch=self.step - 1,
        )
        if hasattr(self.scheduler, "scheduler"):
            self.scheduler.scheduler = inner
        else:
            self.scheduler = inner
        self.accelerator.print(f"resumed {self.cfg.output_dir} at step {self.step}")
        return True

    def save_finished_state(self) -> None:
        """At the end of a run: its state (step, best, history) in ``trainer.json``, and the resumable
        checkpoint (weights, optimizer, RNG: several times the model's size) removed unless
        ``keep_checkpoint``."""
        if not self.accelerator.is_main_process:
            return
        write_json(self._path(STATE_FILE), self._state())
        if self.cfg.keep_checkpoint:
            self.save_checkpoint()
        else:
            for name in ("checkpoint", "checkpoint" + OLD, "checkpoint" + BUILDING):
                remove_whole(self._path(name))

    def _state(self) -> dict:
        return {"step": self.step, "best": self.best, "history": self.history}

    def finished_state(self) -> dict | None:
        """The state of a run that finished in ``output_dir`` under this config (None when there is
        none); one that finished short of ``steps`` without its checkpoint cannot be continued."""
        path = self._path(STATE_FILE)
        if not os.path.exists(path) or not os.path.exists(self._path("final", "config.json")):
            return None
        with open(path, encoding="utf8") as f:
            state = json.load(f)
        if state["step"] < self.cfg.steps:
            raise ConfigError(
                f"{self.cfg.output_dir} holds a run finished at step {state['step']} whose resumable "
                f"checkpoint was removed at its end, so it cannot continue to step {self.cfg.steps}; "
                "pass --overwrite to train again (set keep_checkpoint: true to keep a finished run's "
                "checkpoint)"
            )
        self.step, self.best, self.history = state["step"], state["best"], state["history"]
        self.accelerator.print(f"{self.cfg.output_dir}: finished before (step {self.step}); nothing to train")
        return {"step": self.step, "best": self.best, "history": self.history}

    # ------------------------------------------------------------------ validation
    def validate(self) -> float | None:
        """The validation measure on the validation run, with a progress bar and its value printed."""
        if self.validation is None:
            return None
        run, qrels = self.validation
        model = self.reranker.model
        model.eval()
        start, verbose = time.time(), self.reranker.verbose
        self.reranker.verbose = self.accelerator.is_main_process
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = self.reranker(run)
        finally:
            self.reranker.verbose = verbose
        model.train()
        if self.kept_prior is not None:  # measured as final/ will score: the model and the prior beside it
            res = self._with_kept_prior(res, "validation", measure_scale=True)
        value = self._measure(res, run, qrels)
        # the weight of the first stage's score beside this model's, chosen on these queries (see ScoreFusion)
        scored = with_first_stage(res, run)
        self.fusion = {
            "step": self.step,
            "k": self.cfg.eval.k,
            **choose_weight(scored, qrels, self.cfg.eval.measure),
        }
        self.accelerator.print(
            f"step {self.step}: validation {self.cfg.eval.measure} = {value:.4f}, fused with the "
            f"first stage {self.fusion['value']:.4f} (weight {self.fusion['weight']}) "
            f"({run['qid'].nunique()} queries, {len(run)} pairs, {time.time() - start:.0f} s)"
            + (
                f"; the prior beside the model at scale {self.prior_choice['scale'] or 0:.4g} (the model alone "
                f"{self.prior_choice['model_alone']:.4f})"
                if self.kept_prior is not None
                else ""
            )
        )
        return value

    def _say_never_improved(self) -> None:
        """Validation never rose above the starting model's: said loudly (no best/ is written: the
        starting model is its own checkpoint)."""
        from ..models.checkpoints import has_classification_head

        cfg, value = self.cfg, self.best[self.cfg.eval.measure]
        backbone, random_head = cfg.model.backbone, False
        if backbone:  # None: a model built in code, not from a folder
            try:
                random_head = not has_classification_head(backbone)
            except (OSError, ValueError):
                pass
        start = "the starting model" + (" (its head random)" if random_head else f" ({backbone})" if backbone else "")
        warnings.warn(
            f"validation never improved on {start}: {cfg.eval.measure} {value:.4f} at step 0, above every later "
            f"step; final/ ({self._path('final')}) holds the trained model; use it, the starting model, or change "
            "the recipe (lr, steps, loss)",
            stacklevel=4,  # the caller of train()
        )
        self.accelerator.print(
            f"WARNING: validation never improved on {start} ({cfg.eval.measure} {value:.4f}); no best/ was written"
        )

    def _measure(self, res, run, qrels) -> float:
        """``eval.measure`` of the re-ranked ``res`` over the queries of ``run`` (the candidates it
        re-ranked): judgements of any other query are left out, as the fusion weight's choice leaves
        them out, so that both average over the same queries."""
        qrels = qrels[qrels["qid"].isin(set(run["qid"]))]
        return float(
            ir_measures.calc_aggregate(
                [self.measure],
                qrels.rename(columns={"qid": "query_id", "docno": "doc_id", "label": "relevance"}),
                res.rename(columns={"qid": "query_id", "docno": "doc_id"}),
            )[self.measure]
        )

    def measure_out_of_domain(self) -> dict:
        """``{"val_ood": value}`` on the out-of-domain queries (``eval.ood_path``), or nothing."""
        if self.out_of_domain is None:
            return {}
        run, qrels = self.out_of_domain
        model = self.reranker.model
        model.eval()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = self.reranker(run)
        finally:
            model.train()
        if self.kept_prior is not None:
            res = self._with_kept_prior(res, "out of domain", measure_scale=False)
        value = self._measure(res, run, qrels)
        self.accelerator.print(f"step {self.step}: out of domain {self.cfg.eval.measure} = {value:.4f}")
        return {"val_ood": value}

    # ------------------------------------------------------------------ training
    def train(self, stop_after: int | None = None, resume_anyway: bool = False) -> dict:
        """Train to ``cfg.steps`` (resuming from a checkpoint if one exists, under the same config
        unless ``resume_anyway``).

        ``stop_after`` stops after that many steps of this call (to simulate an interruption).
        """
        prior = self.reranker.prior
        with prior.keeping_embeddings() if prior is not None else contextlib.nullcontext():
            return self._train(stop_after, resume_anyway)

    def _train(self, stop_after: int | None, resume_anyway: bool) -> dict:
        cfg = self.cfg
        self.check_config(resume_anyway)
        if not self.resume():
            finished = self.finished_state()
            if finished is not None:
                return finished
            seed_everything(cfg.seed)
            if cfg.eval.every and self.validation is not None and cfg.eval.at_start:
                self.best = {"step": 0, cfg.eval.measure: self.validate()}
                # best/: the starting model, not copied
                self.history.append({"step": 0, **self._validation_entry(self.best[cfg.eval.measure])})
        done = 0
        progress = (
            bar(total=cfg.steps, initial=self.step, desc=f"training {os.path.basename(cfg.output_dir)}", unit="step")
            if self.accelerator.is_main_process and self.step < cfg.steps
            else None
        )
        while self.step < cfg.steps and (stop_after is None or done < stop_after):
            groups = self.data.batch(self.step, cfg.batch_size)
            sizes = {len(g.docs) for g in groups}
            if len(sizes) != 1:
                raise ValueError("every group of a batch needs the same number of documents")
            n = sizes.pop()
            queries = [g.query for g in groups for _ in g.docs]
            docs = [d for g in groups for d in g.docs]
            teacher = None
            if groups[0].teacher is not None:
                teacher = torch.tensor([g.teacher for g in groups], device=self.accelerator.device)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with self.accelerator.autocast():
                    scores = self.scorer(queries, docs).float().view(len(groups), n)
                loss = self.loss_fn(scores, teacher)
            self.accelerator.backward(loss)
            if cfg.max_grad_norm:
                self.accelerator.clip_grad_norm_(self.scorer.parameters(), cfg.max_grad_norm)
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad()
            self.step += 1
            done += 1
            entry = {"step": self.step, "loss": loss.item(), "lr": self.scheduler.get_last_lr()[0]}
            if progress is not None:
                progress.set_postfix(loss=f"{entry['loss']:.4f}", refresh=False)
                progress.update(1)
            if cfg.eval.every and self.validation is not None and self.step % cfg.eval.every == 0:
                value = self.validate()
                entry.update(self._validation_entry(value))
                if self.best is None or value > self.best[cfg.eval.measure]:
                    self.best = {"step": self.step, cfg.eval.measure: value}
                    self.save_model("best")
            self.history.append(entry)
            if cfg.log_every and (self.step % cfg.log_every == 0 or "val" in entry):
                self.accelerator.print(json.dumps(entry))
            if cfg.save_every and self.step % cfg.save_every == 0:
                self.save_checkpoint()
        if progress is not None:
            progress.close()
        if self.step >= cfg.steps:
            if not os.path.exists(self._path("final", "config.json")) or done:
                if self.validation is not None and cfg.eval.every and (self.fusion or {}).get("step") != self.step:
                    # the last step was not validated: it is now, so that final/ gets its fusion weight and the
                    # curve its end
                    self.history[-1].update(self._validation_entry(self.validate()))
                self.save_model("final")
                if self.best is not None and self.best["step"] == self.step and self.accelerator.is_main_process:
                    remove_whole(self._path("best"))  # the last step validated best: best/ would be final/ again
                self.save_finished_state()
            if self.best is not None and self.best["step"] == 0:
                self._say_never_improved()
        return {"step": self.step, "best": self.best, "history": self.history}


def check_run_config(cfg: TrainConfig, resume_anyway: bool = False, write: bool = True) -> None:
    """Write the resolved config into ``cfg.output_dir``; a run already there under another config
    is refused with the difference (unless ``resume_anyway``, which continues it under the new one).
    A run that saved no step (it failed or was stopped before its first checkpoint) holds nothing to
    resume, so its config does not refuse a corrected command."""
    path = os.path.join(cfg.output_dir, CONFIG_FILE)
    current = cfg.to_dict()
    started = any(os.path.exists(os.path.join(cfg.output_dir, *p)) for p in (("checkpoint", STATE_FILE), ("final",)))
    if os.path.exists(path) and started:
        with open(path, encoding="utf8") as f:
            saved = json.load(f)
        diff = config_diff(read_saved_config(saved), current)
        if diff and not resume_anyway:
            raise ConfigError(
                f"{cfg.output_dir} holds a run with another config ({'; '.join(diff)}); pass "
                "--overwrite to start it again, --resume-anyway to continue it under the new config "
                "(the learning-rate schedule then follows the new lr/warmup/steps), or choose another "
                "output_dir"
            )
        if diff:
            print(f"continuing {cfg.output_dir} under a changed config: {'; '.join(diff)}", flush=True)
    elif os.path.exists(os.path.join(cfg.output_dir, "checkpoint")) and not resume_anyway:
        raise ConfigError(
            f"{cfg.output_dir} holds a checkpoint but no {CONFIG_FILE}, so it cannot be checked "
            "against this config; pass --overwrite or --resume-anyway"
        )
    if write:  # once the model and data are ready: a run that fails before leaves no config behind
        os.makedirs(cfg.output_dir, exist_ok=True)
        write_json(path, current)


def read_saved_config(saved: dict) -> dict:
    """A run's saved config as this package writes it now: read through :class:`TrainConfig` (keys
    it lacks at their defaults, an older layout in today's), or, if that fails, as saved with the
    keys it lacks at their defaults."""
    try:
        return TrainConfig.from_dict(saved).to_dict()
    except ValueError:
        return with_defaults(saved, TrainConfig().to_dict())


def with_defaults(saved: dict, defaults: dict) -> dict:
    """``saved`` with the keys it lacks (options added to the package since it was written) at
    their defaults, so that they are not reported as changes."""
    out = dict(saved)
    for key, value in defaults.items():
        if key not in out:
            out[key] = value
        elif isinstance(value, dict) and isinstance(out[key], dict):
            out[key] = with_defaults(out[key], value)
    return out


def config_diff(old: dict, new: dict, prefix: str = "") -> list[str]:
    """``key: old → new`` for every value that differs (``output_dir`` and ``keep_checkpoint`` aside)."""
    out = []
    for key in sorted(set(old) | set(new)):
        if key in ("output_dir", "keep_checkpoint") and not prefix:  # neither changes what the run trains
            continue
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_diff(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} → {b!r}")
    return out


def clear_output_dir(path: str) -> None:
    """``--overwrite``: remove a previous run's checkpoints and models (and nothing else)."""
    for name in ("checkpoint", "best", "final", CONFIG_FILE, STATE_FILE):
        full = os.path.join(path, name)
        if os.path.isdir(full):
            shutil.rmtree(full)
        elif os.path.exists(full):
            os.remove(full)
