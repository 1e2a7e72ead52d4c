# gunicorn settings for the box (bind, workers and threads come from `chalkbox box serve`).
# No preload: each worker imports the app after the fork, so onnxruntime sessions are
# created in the worker that uses them.
worker_class = "gthread"
preload_app = False
timeout = 60
graceful_timeout = 30
keepalive = 5
# Tablets on flaky Wi-Fi: bound what a slow client can hold.
limit_request_line = 4094
limit_request_fields = 50
limit_request_field_size = 8190
accesslog = "-"
errorlog = "-"
loglevel = "info"

_advertiser = None


def when_ready(server):
    """The box listens: announce it on the school network as <mdns_name>.local."""
    global _advertiser
    import os

    data_dir = os.environ.get("CHALKBOX_DATA_DIR")
    if not data_dir or os.environ.get("CHALKBOX_CENTRE_DIR"):
        return  # the centre's server shares these settings but is not a box
    from appliance.config import load_config
    from appliance.discovery import advertise
    from appliance.errors import ApplianceError

    try:
        _advertiser = advertise(load_config(data_dir))
    except ApplianceError as exc:  # advertising is a convenience: never a reason not to serve
        server.log.warning("not advertising over mDNS: %s", exc.message)


def post_worker_init(worker):
    """Warm the worker's models and knowledge base in the background: it serves at once,
    and the first ask after a start finds the FAQ already embedded."""
    import threading

    service = getattr(worker.wsgi, "extensions", {}).get("chalkbox")
    if service is None:
        return

    def warm():
        try:
            service.warm_up()
        except Exception as exc:  # a broken model is reported by /readyz and each request
            worker.log.warning("warm-up failed: %s", exc)

    threading.Thread(target=warm, name="chalkbox-warm-up", daemon=True).start()


def on_exit(server):
    if _advertiser is not None:
        _advertiser.close()
