# A recording cloud for the SDK tests: an OpenAI-compatible HTTP server (stdlib) that keeps every request.
"""`RecordingCloud` serves `/v1/chat/completions`, `/v1/completions` and `/v1/models` on a free
127.0.0.1 port from a thread, records each request as (method, path, JSON body) and answers in
the shape the request asks for, as OpenAI's API does:

- `tools` (and a `tool_choice` other than "none"): one `tool_calls` message per choice,
  finish_reason "tool_calls", arguments filled from the tool's parameter schema;
- `n: k`: k choices;
- `logprobs: true`: `logprobs.content` per token, with `top_logprobs` alternatives;
- `response_format` `json_object` / `json_schema`: content that is a JSON object;
- `stream: true`: server-sent events, a role chunk, content (or tool call) deltas and a finish
  chunk per choice index, a last usage chunk when `stream_options.include_usage`, then [DONE];
- a `tool` turn last: a text answer (the model read the tool's result);
- `echo` (text completions): the prompt before the text;
- `max_tokens` (or `max_completion_tokens`) over 100,000: a 400 `context_length_exceeded`.
"""

import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CONTEXT_LIMIT = 100_000
FINGERPRINT = "fp_recording"
CONTEXT_ERROR = {
    "message": f"This model's maximum context length is {CONTEXT_LIMIT} tokens. However, you requested more "
               "tokens than that. Please reduce the length of the messages or completion.",
    "type": "invalid_request_error",
    "param": "messages",
    "code": "context_length_exceeded",
}


class RecordingCloud:
    """The server, started on construction; `stop()` shuts it down."""

    def __init__(self, model):
        self.model = model
        self._requests = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        handler = type("Handler", (_Handler,), {"cloud": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="recording-cloud", daemon=True)
        self.thread.start()

    def requests(self, method=None):
        """Every request so far as (method, path, body), oldest first; `method` filters."""
        with self._lock:
            return [request for request in self._requests if method in (None, request[0])]

    def posts(self):
        """The POSTed requests as (path, body)."""
        return [(path, body) for _, path, body in self.requests("POST")]

    def mark(self):
        """How many POSTs were recorded so far: `posts()[mark:]` are the ones after it."""
        return len(self.posts())

    def record(self, method, path, body):
        with self._lock:
            self._requests.append((method, path, body))

    def next_id(self):
        return next(self._ids)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    cloud = None  # set on the subclass made per server

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.cloud.record("GET", self.path, None)
        if self.path == "/v1/models":
            model = {"id": self.cloud.model, "object": "model", "created": 1_700_000_000, "owned_by": "recording-cloud"}
            self._json(200, {"object": "list", "data": [model]})
        else:
            self._not_found()

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        self.cloud.record("POST", self.path, body)
        if not isinstance(body, dict):
            self._json(400, {"error": {"message": "The body is not a JSON object.", "type": "invalid_request_error",
                                       "param": None, "code": None}})
            return
        if self.path not in ("/v1/chat/completions", "/v1/completions"):
            self._not_found()
            return
        budget = body.get("max_tokens") or body.get("max_completion_tokens") or 0
        if isinstance(budget, int) and budget > CONTEXT_LIMIT:
            self._json(400, {"error": CONTEXT_ERROR})
            return
        answer = Answer(body, self.path == "/v1/chat/completions", self.cloud.next_id())
        if body.get("stream"):
            self._events(answer.chunks())
        else:
            self._json(200, answer.whole())

    def _not_found(self):
        self._json(404, {"error": {"message": f"Invalid URL ({self.command} {self.path})",
                                   "type": "invalid_request_error", "param": None, "code": "unknown_url"}})

    def _json(self, status, value):
        data = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _events(self, chunks):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for chunk in [*(json.dumps(chunk) for chunk in chunks), "[DONE]"]:
            event = f"data: {chunk}\n\n".encode()
            self.wfile.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")


def _tokens(text):
    """A crude tokenizer: words with their leading space."""
    words = text.split(" ")
    return [words[0], *(" " + word for word in words[1:])]


def _sample_value(schema):
    kind = schema.get("type") if isinstance(schema, dict) else None
    if isinstance(schema, dict) and schema.get("enum"):
        return schema["enum"][0]
    return {"string": "Oslo", "integer": 3, "number": 1.5, "boolean": True, "array": [], "object": {}}.get(kind, "x")


class Answer:
    """What one request gets: its choices, usage and ids, whole or as chunks."""

    def __init__(self, body, chat, number):
        self.body = body
        self.chat = chat
        self.model = body.get("model")
        self.created = int(time.time())
        self.id = f"{'chatcmpl' if chat else 'cmpl'}-recording-{number}"
        self.n = body.get("n") or 1
        tools = body.get("tools") or []
        messages = body.get("messages") or [{}]
        # A tool's result comes back in a `tool` turn: the model then answers in text.
        calls = tools and body.get("tool_choice") != "none" and messages[-1].get("role") != "tool"
        self.tool = tools[0]["function"] if calls else None
        self.logprobs = bool(body.get("logprobs"))
        self.top = body.get("top_logprobs") or 0
        structured = (body.get("response_format") or {}).get("type") in ("json_object", "json_schema")
        self.texts = [self._text(index, structured) for index in range(self.n)]
        prompt = body.get("messages") if chat else body.get("prompt")
        self.prompt_tokens = len(json.dumps(prompt).split())
        written = [self._call(i)["function"]["arguments"] for i in range(self.n)] if self.tool else self.texts
        self.completion_tokens = sum(len(_tokens(text)) for text in written)

    def _text(self, index, structured):
        if structured:
            return json.dumps({"answer": "recorded", "choice": index})
        text = f"Answer {index + 1} from the recording cloud."
        return self.body["prompt"] + text if not self.chat and self.body.get("echo") else text

    def _call(self, index):
        properties = (self.tool.get("parameters") or {}).get("properties") or {}
        arguments = json.dumps({name: _sample_value(schema) for name, schema in properties.items()})
        function = {"name": self.tool["name"], "arguments": arguments}
        return {"id": f"call_{index}", "type": "function", "function": function}

    def _finish(self):
        return "tool_calls" if self.tool else "stop"

    def _logprobs(self, tokens):
        if not self.logprobs:
            return None
        def entry(token, logprob):
            return {"token": token, "logprob": logprob, "bytes": list(token.encode())}
        content = [
            {**entry(token, -0.1), "top_logprobs": [entry(token if k == 0 else f"{token}~{k}", -0.1 * (k + 1))
                                                    for k in range(self.top)]}
            for token in tokens
        ]
        return {"content": content, "refusal": None}

    def _usage(self):
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens}

    def _envelope(self, kind, choices, **extra):
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model,
                "system_fingerprint": FINGERPRINT, "choices": choices, **extra}

    def whole(self):
        if not self.chat:
            choices = [{"index": i, "text": text, "finish_reason": "stop", "logprobs": None}
                       for i, text in enumerate(self.texts)]
            return self._envelope("text_completion", choices, usage=self._usage())
        choices = []
        for index, text in enumerate(self.texts):
            message = {"role": "assistant", "content": None if self.tool else text, "refusal": None}
            if self.tool:
                message["tool_calls"] = [self._call(index)]
            logprobs = None if self.tool else self._logprobs(_tokens(text))
            choices.append({"index": index, "message": message, "logprobs": logprobs, "finish_reason": self._finish()})
        return self._envelope("chat.completion", choices, usage=self._usage())

    def chunks(self):
        with_usage = bool((self.body.get("stream_options") or {}).get("include_usage"))
        extra = {"usage": None} if with_usage else {}
        if not self.chat:
            for index, text in enumerate(self.texts):
                for token in _tokens(text):
                    yield self._envelope("text_completion", [{"index": index, "text": token, "finish_reason": None,
                                                              "logprobs": None}], **extra)
                yield self._envelope("text_completion", [{"index": index, "text": "", "finish_reason": "stop",
                                                          "logprobs": None}], **extra)
        else:
            def chunk(index, delta, finish=None, logprobs=None):
                choice = {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
                return self._envelope("chat.completion.chunk", [choice], **extra)
            for index in range(self.n):
                yield chunk(index, {"role": "assistant", "content": "" if not self.tool else None, "refusal": None})
            if self.tool:
                for index in range(self.n):
                    call = self._call(index)
                    start = {"index": 0, "id": call["id"], "type": "function",
                             "function": {"name": call["function"]["name"], "arguments": ""}}
                    yield chunk(index, {"tool_calls": [start]})
                    arguments = call["function"]["arguments"]
                    for piece in (arguments[:len(arguments) // 2], arguments[len(arguments) // 2:]):
                        yield chunk(index, {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
            else:
                # Choices interleaved token by token, as a server generating them together sends them.
                tokens = [_tokens(text) for text in self.texts]
                for position in range(max(map(len, tokens))):
                    for index, choice_tokens in enumerate(tokens):
                        if position < len(choice_tokens):
                            token = choice_tokens[position]
                            yield chunk(index, {"content": token}, logprobs=self._logprobs([token]))
            for index in range(self.n):
                yield chunk(index, {}, finish=self._finish())
        if with_usage:
            yield self._envelope("chat.completion.chunk" if self.chat else "text_completion", [], usage=self._usage())
