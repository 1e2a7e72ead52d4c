"""``chalkbox train round``: one command for the centre's weekly round (training.round)."""
from __future__ import annotations

from pathlib import Path

import click

from appliance.cli_types import existing_dir, existing_file, new_dir

from .round_state import STAGES


@click.command("round")
@click.option("--centre-dir", type=new_dir, envvar="CHALKBOX_CENTRE_DIR", default="var/central",
              show_default=True, help="The centre's directory (store, published/, rounds/).")
@click.option("--key", "signing_key", required=True, type=existing_file,
              help="The fleet's ed25519 signing key (its .pub.pem beside it).")
@click.option("--eval-data", required=True, type=existing_dir,
              help="The fixed evaluation set: a SemEval split dir or a content dir.")
@click.option("--seed-data", multiple=True, type=existing_dir,
              help="Seed training data besides the field data (SemEval split or content dir); "
                   "repeatable.")
@click.option("--stick", "sticks", multiple=True, type=existing_dir,
              help="A teacher's USB stick to ingest first and refill with the promoted model.")
@click.option("--school-id", help="Publish for this school only (default: every school).")
@click.option("--base-model", help="A local Hugging Face checkpoint (default: packaged MiniLM).")
@click.option("--continue-teacher/--from-base", default=True, show_default=True,
              help="Continue from the teacher of the round that made production "
                   "(--continue-epochs at --continue-lr), or train from the base model "
                   "(--teacher-epochs at --teacher-lr). The first round trains from the base.")
@click.option("--teacher-epochs", type=click.FloatRange(min=0.01), default=3.0, show_default=True)
@click.option("--teacher-lr", type=float, default=3e-5, show_default=True)
@click.option("--continue-epochs", type=click.FloatRange(min=0.01), default=1.0,
              show_default=True)
@click.option("--continue-lr", type=float, default=2e-5, show_default=True)
@click.option("--student-layers", type=click.IntRange(0, 48), default=3, show_default=True,
              help="Layers of the distilled student (0: ship the teacher itself).")
@click.option("--student-epochs", type=click.FloatRange(min=0.01), default=3.0,
              show_default=True)
@click.option("--student-lr", type=float, default=1e-4, show_default=True)
@click.option("--batch-size", type=click.IntRange(1, 4096), default=16, show_default=True)
@click.option("--max-length", type=click.IntRange(8, 4096), default=128, show_default=True)
@click.option("--min-gain", type=click.FloatRange(-1, 1), default=0.01, show_default=True,
              help="Promote only if macro-F1 beats production by at least this much.")
@click.option("--max-slice-drop", type=click.FloatRange(0, 1), default=0.05, show_default=True,
              help="...and no subject or grade band loses more macro-F1 than this.")
@click.option("--eval-limit", type=click.IntRange(min=1),
              help="Evaluate on the first N answers only (quick trials).")
@click.option("--use-weak", is_flag=True, help="Also learn from students' thumbs (weak labels).")
@click.option("--stop-after", type=click.Choice(STAGES), help="Stop after this stage.")
@click.option("--seed", type=int, default=42, show_default=True)
def round_command(centre_dir, signing_key, eval_data, seed_data, sticks, school_id, base_model,
                  continue_teacher, teacher_epochs, teacher_lr, continue_epochs, continue_lr,
                  student_layers, student_epochs, student_lr, batch_size, max_length, min_gain,
                  max_slice_drop, eval_limit, use_weak, stop_after, seed):
    """Ingest, snapshot, train, distil, export, evaluate, and promote only if better.

    Resumable: run it again after a crash and it continues from its last finished stage.
    """
    from .promotion import PromotionRule
    from .round import RoundConfig, run_round

    config = RoundConfig(
        centre_dir=Path(centre_dir), signing_key=signing_key, eval_data=eval_data,
        seed_data=seed_data, sticks=sticks, school_id=school_id, base_model=base_model,
        continue_teacher=continue_teacher, continue_epochs=continue_epochs,
        continue_lr=continue_lr, teacher_epochs=teacher_epochs, teacher_lr=teacher_lr, student_layers=student_layers,
        student_epochs=student_epochs, student_lr=student_lr, batch_size=batch_size,
        max_length=max_length, eval_limit=eval_limit, use_weak=use_weak, seed=seed,
        rule=PromotionRule(min_gain=min_gain, max_slice_drop=max_slice_drop))
    state = run_round(config, echo=click.echo, stop_after=stop_after)
    if not state.done:
        click.echo(f"{state.round_id} stopped before {state.next_stage}; run again to go on")
        return
    decision = state.output("decide")
    verdict = "promoted" if decision["promote"] else "not promoted"
    click.echo(f"{state.round_id}: {verdict}: " + "; ".join(decision["reasons"]))
    click.echo(f"report: {state.output('report')['report']}")
