"""Small helpers shared by the analyzer tests."""


def analyzer_app(register):
    """One analyzer's command (and `generate`) on a fresh typer app, as interp.cli registers it."""
    import typer

    import interp.cli

    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    app.command()(interp.cli.generate)
    return app


def save_model_folder(model, folder):
    """Write `model` as an ordinary HF folder (weights + tokenizer) and return the folder."""
    model.hf.save_pretrained(folder)
    model.tokenizer.save_pretrained(folder)
    return folder
