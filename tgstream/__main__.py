from tgstream.cli.main import app

app()
