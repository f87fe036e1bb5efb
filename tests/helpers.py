"""Small helpers shared by the analyzer tests."""


def analyzer_app(register):
    """One analyzer's command (and `generate`) on a fresh typer app, as interp.cli registers it."""
    import typer

    from interp.cli.core import generate

    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    app.command()(generate)
    return app


def save_bert_folder(folder):
    """A tiny BERT (not a causal LM) written as an ordinary HF folder; returns the folder."""
    from transformers import BertConfig, BertModel

    config = BertConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        vocab_size=50,
    )
    BertModel(config).save_pretrained(folder)
    return folder


def save_model_folder(model, folder):
    """Write `model` as an ordinary HF folder (weights + tokenizer) and return the folder."""
    model.hf.save_pretrained(folder)
    model.tokenizer.save_pretrained(folder)
    return folder


CONFLICT_SUBJECTS = (
    "cat dog box key apple girl boy city country time red blue green big small little".split()
)
CONFLICT_ANSWERS = "one two three four five six seven eight nine ten".split()


def own_conflict_items(model, template, per_subject):
    """Conflict items whose memory answer is what the model itself says on the clean prompt."""
    from interp.data.conflict import ConflictItem

    items = []
    for i, s in enumerate(CONFLICT_SUBJECTS):
        mem = model.decode(model.generate(template.clean_prompt(s), 1).new_tokens[0]).strip()
        others = [a for a in CONFLICT_ANSWERS if a != mem]
        for j in range(per_subject):
            items.append(
                ConflictItem(s, mem, others[(3 * i + j) % len(others)], frequency=float(i))
            )
    return items


def write_items_jsonl(items, path, frequency: bool = False):
    """Conflict items as the JSONL file `--items` reads (with each item's frequency if asked)."""
    import json

    def row(i):
        d = {
            "subject": i.subject,
            "memory_answer": i.memory_answer,
            "context_answer": i.context_answer,
        }
        return {**d, "frequency": i.frequency} if frequency else d

    path.write_text("\n".join(json.dumps(row(i)) for i in items))
    return path
