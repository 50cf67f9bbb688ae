"""An optional judge: a larger model, behind any OpenAI-compatible chat endpoint (a local
Ollama at http://localhost:11434/v1, a vLLM server, a hosted API), scores each generated
response from 0 to 100 against the reference output, as in the book's chapter 7.

Nothing is sent unless the user gives an endpoint URL and a model name; without them
`judge_responses` returns a note saying how to configure one. A request that fails is
reported in the result (never raised): the fine-tuning it evaluates has already
succeeded. Plain urllib, no extra dependency. The API key, if the endpoint needs one,
is read from the environment variable OPENAI_API_KEY.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request

from gpt.finetune.templates import alpaca_prompt

API_KEY_ENV = "OPENAI_API_KEY"
NOT_CONFIGURED = ("no judge configured: pass --judge-url URL and --judge-model NAME (any "
                  "OpenAI-compatible endpoint, e.g. Ollama's http://localhost:11434/v1) to "
                  "score the responses")


def judge_prompt(record: dict, response: str) -> str:
    question = alpaca_prompt(record) if "instruction" in record else json.dumps(
        record.get("messages"))
    return (f"Given the input `{question}` and the correct output `{record.get('output', '')}`, "
            f"score the model response `{response}` on a scale from 0 to 100, where 100 is "
            "the best score. Respond with the integer number only.")


def chat_request(url: str, model: str, prompt: str, api_key: str | None = None):
    """The POST request for one judgement: {url}/chat/completions, temperature 0."""
    body = {"model": model, "messages": [{"role": "user", "content": prompt}],
            "temperature": 0}
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return urllib.request.Request(url.rstrip("/") + "/chat/completions", method="POST",
                                  data=json.dumps(body).encode("utf-8"), headers=headers)


def parse_score(reply: dict) -> int | None:
    """The first integer in the reply's message, if it lies in 0..100."""
    text = reply["choices"][0]["message"]["content"]
    found = re.search(r"-?\d+", text)
    score = int(found.group()) if found else None
    return score if score is not None and 0 <= score <= 100 else None


def judge_responses(records, responses, url: str | None, model: str | None,
                    timeout: float = 60.0) -> dict:
    """{"url", "model", "scores", "mean_score"} or {"note": ...} (not configured, or the
    endpoint failed)."""
    if not url or not model:
        return {"note": NOT_CONFIGURED}
    api_key = os.environ.get(API_KEY_ENV)
    scores = []
    for record, response in zip(records, responses):
        request = chat_request(url, model, judge_prompt(record, response), api_key)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                scores.append(parse_score(json.loads(answer.read().decode("utf-8"))))
        except (urllib.error.URLError, OSError, ValueError, KeyError, IndexError) as exc:
            return {"note": f"the judge at {url} failed after {len(scores)} response(s): "
                            f"{exc}", "url": url, "model": model, "scores": scores}
    valid = [s for s in scores if s is not None]
    return {"url": url, "model": model, "scores": scores,
            "mean_score": sum(valid) / len(valid) if valid else None,
            "unparsed": len(scores) - len(valid)}
