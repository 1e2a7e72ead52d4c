"""A TCP proxy on loopback that cuts connections: the school's flaky uplink, in a thread."""
from __future__ import annotations

import random
import socket
import threading


class FlakyProxy:
    """Forwards 127.0.0.1:<port> to ``target``; with probability ``cut_probability`` a
    connection is cut after a random number of bytes (in either direction), and with
    ``refuse_probability`` it is closed at once."""

    def __init__(self, target_port: int, cut_probability: float = 0.5,
                 refuse_probability: float = 0.1, seed: int = 1):
        self.target_port = target_port
        self.cut_probability = cut_probability
        self.refuse_probability = refuse_probability
        self.rng = random.Random(seed)
        self.cuts = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self.listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            roll = self.rng.random()
            if roll < self.refuse_probability:
                self.cuts += 1
                client.close()
                continue
            budget = self.rng.randrange(1, 40000) if roll < self.cut_probability else None
            if budget is not None:
                self.cuts += 1
            threading.Thread(target=self._pipe_pair, args=(client, budget), daemon=True).start()

    def _pipe_pair(self, client: socket.socket, budget: int | None) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
        except OSError:
            client.close()
            return
        state = {"left": budget}
        lock = threading.Lock()

        def pump(src, dst):
            try:
                while True:
                    data = src.recv(16384)
                    if not data:
                        break
                    with lock:
                        if state["left"] is not None:
                            if state["left"] <= 0:
                                break
                            data = data[: state["left"]]
                            state["left"] -= len(data)
                    dst.sendall(data)
                    if state["left"] is not None and state["left"] <= 0:
                        break
            except OSError:
                pass
            finally:
                for sock in (client, upstream):
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        threads = [threading.Thread(target=pump, args=(client, upstream), daemon=True),
                   threading.Thread(target=pump, args=(upstream, client), daemon=True)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        client.close()
        upstream.close()

    def close(self) -> None:
        self._stop.set()
        self.listener.close()
        self._thread.join(5)
