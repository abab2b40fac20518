from mobimart.cli import app

app()
