"""`nmt serve`: a long-running HTTP server for every task's model (FastAPI + uvicorn).

The server imports the library (nmt.tasks runners); nothing in the library imports the server. app.py builds the
app, endpoints.py holds the registry of JSON endpoints (one small function per task), generate.py the streaming
generator, batching.py the request batcher, schemas.py the request bodies, errors.py the error answers,
limits.py the checks of a request's size, models.py loading and describing the models, settings.py the settings;
static/index.html is the page at /.
"""
