/**
 * The HTTP helper against a real local node:http server on an ephemeral port: every classification
 * (2xx decoded with a schema, 4xx rejected with a body excerpt, 408/429/5xx retryable, Retry-After
 * in seconds and as a date, connection refused, a timeout), and a step that uses it, retried through
 * a flaky server until it succeeds, with the same idempotency key on every attempt.
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { describe, expect, it } from "@effect/vitest"
import { Failure, Retry, Workflow } from "@weft/core"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as NodeHttp from "node:http"
import type * as Net from "node:net"
import * as Client from "../src/Client.js"
import * as Http from "../src/Http.js"
import * as MemoryStore from "../src/MemoryStore.js"
import * as Runner from "../src/Runner.js"
import { Store } from "../src/Store.js"

interface Seen {
  readonly method: string
  readonly url: string
  readonly headers: NodeHttp.IncomingHttpHeaders
  readonly body: string
}

type Handler = (request: Seen, response: NodeHttp.ServerResponse) => void

/** A real HTTP server on an ephemeral port for the scope; every request it saw is in `seen`. */
const serve = (
  handler: Handler
): Effect.Effect<{ readonly url: string; readonly seen: Array<Seen> }, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ readonly server: NodeHttp.Server; readonly url: string; readonly seen: Array<Seen> }>((resume) => {
      const seen: Array<Seen> = []
      const server = NodeHttp.createServer((req, res) => {
        let body = ""
        req.on("data", (chunk) => (body += chunk))
        req.on("end", () => {
          const request = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, body }
          seen.push(request)
          handler(request, res)
        })
      })
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as Net.AddressInfo
        resume(Effect.succeed({ server, url: `http://127.0.0.1:${port}`, seen }))
      })
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        // A slow handler still holds its socket: close it, or close() waits for it.
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ seen, url }) => ({ url, seen })))

const reply = (status: number, body: string, headers: Record<string, string> = {}): Handler => (_, res) => {
  res.writeHead(status, { "content-type": "application/json", ...headers })
  res.end(body)
}

/** A port nobody listens on: one a server had a moment ago. */
const closedPort = Effect.async<number>((resume) => {
  const server = NodeHttp.createServer()
  server.listen(0, "127.0.0.1", () => {
    const { port } = server.address() as Net.AddressInfo
    server.close(() => resume(Effect.succeed(port)))
  })
})

const failureOf = <A, E>(effect: Effect.Effect<A, E>) => Effect.flip(effect)

describe("Http.request", () => {
  it.scopedLive("a 200 with JSON is decoded with the success schema", () =>
    Effect.gen(function*() {
      const server = yield* serve(reply(200, `{"sku":"book","at":"2026-01-02T03:04:05.000Z","tags":["a"]}`))
      const Item = Schema.Struct({ sku: Schema.String, at: Schema.Date, tags: Schema.Array(Schema.String) })
      const item = yield* Http.get(`${server.url}/items/1`, { success: Item })
      expect(item).toEqual({ sku: "book", at: new Date("2026-01-02T03:04:05.000Z"), tags: ["a"] })
      expect(item.at).toBeInstanceOf(Date)
      expect(server.seen[0]).toMatchObject({ method: "GET", url: "/items/1" })
    }))

  it.scopedLive("without a schema: parsed JSON, text for other types, undefined for an empty body", () =>
    Effect.gen(function*() {
      const json = yield* serve(reply(200, `{"n":1}`))
      expect(yield* Http.get(json.url)).toEqual({ n: 1 })
      const text = yield* serve(reply(200, "plain words", { "content-type": "text/plain" }))
      expect(yield* Http.get(text.url)).toBe("plain words")
      const empty = yield* serve((_, res) => res.writeHead(204).end())
      expect(yield* Http.get(empty.url)).toBeUndefined()
    }))

  it.scopedLive("a POST sends its JSON body and headers", () =>
    Effect.gen(function*() {
      const server = yield* serve((req, res) => reply(201, req.body)(req, res))
      const echoed = yield* Http.post(`${server.url}/orders`, { json: { id: "o-1" }, headers: { "x-tenant": "t1" } })
      expect(echoed).toEqual({ id: "o-1" })
      expect(server.seen[0].headers).toMatchObject({ "content-type": "application/json", "x-tenant": "t1" })
    }))

  it.scopedLive("a 2xx body the schema rejects is HttpInvalidResponse, naming the field", () =>
    Effect.gen(function*() {
      const server = yield* serve(reply(200, `{"sku":42}`))
      const error = yield* failureOf(Http.get(server.url, { success: Schema.Struct({ sku: Schema.String }) }))
      expect(error).toBeInstanceOf(Http.HttpInvalidResponse)
      expect(error).toMatchObject({ _tag: "HttpInvalidResponse", status: 200, body: `{"sku":42}` })
      expect((error as Http.HttpInvalidResponse).detail).toContain("sku")
      expect(Failure.isRetryable(error)).toBe(false)
    }))

  it.scopedLive("a 404 is HttpRejected with its status and body; not retryable", () =>
    Effect.gen(function*() {
      const server = yield* serve(reply(404, `{"error":"no such item"}`))
      const error = yield* failureOf(Http.get(`${server.url}/items/9`))
      expect(error).toBeInstanceOf(Http.HttpRejected)
      expect(error).toMatchObject({
        _tag: "HttpRejected",
        method: "GET",
        url: `${server.url}/items/9`,
        status: 404,
        body: `{"error":"no such item"}`
      })
      expect(Failure.isRetryable(error)).toBe(false)
      expect(error.message).toContain("HTTP 404")
    }))

  it.scopedLive("other 4xx are rejected too; a long body is cut to an excerpt of at most 500 characters", () =>
    Effect.gen(function*() {
      const long = "x".repeat(5_000)
      for (const status of [400, 401, 403, 409, 422]) {
        const server = yield* serve(reply(status, long, { "content-type": "text/plain" }))
        const error = yield* failureOf(Http.request({ method: "PUT", url: server.url, text: "v" }))
        expect(error).toMatchObject({ _tag: "HttpRejected", status, method: "PUT" })
        const { body } = error as Http.HttpRejected
        expect(body.length).toBeLessThanOrEqual(500)
        expect(body.startsWith("xxxx")).toBe(true)
        expect(body.endsWith("…")).toBe(true)
      }
    }))

  it.scopedLive("408, 429, 500 and 503 are HttpRetryable with their status", () =>
    Effect.gen(function*() {
      for (const status of [408, 429, 500, 502, 503]) {
        const server = yield* serve(reply(status, `{"busy":true}`))
        const error = yield* failureOf(Http.get(server.url))
        expect(error).toBeInstanceOf(Http.HttpRetryable)
        expect(error).toMatchObject({ _tag: "HttpRetryable", status, reason: `HTTP ${status}`, body: `{"busy":true}` })
        expect(Failure.isRetryable(error)).toBe(true)
        expect(error).not.toHaveProperty("retryAfter")
      }
    }))

  it.scopedLive("a 429's Retry-After in seconds, and a 503's as an HTTP date, become retryAfter in milliseconds", () =>
    Effect.gen(function*() {
      const seconds = yield* serve(reply(429, "", { "retry-after": "7" }))
      expect(yield* failureOf(Http.get(seconds.url))).toMatchObject({ status: 429, retryAfter: 7_000 })

      const inTwoMinutes = new Date(Date.now() + 120_000).toUTCString()
      const date = yield* serve(reply(503, "", { "retry-after": inTwoMinutes }))
      const error = (yield* failureOf(Http.get(date.url))) as Http.HttpRetryable
      // An HTTP date has whole seconds: the delay is within a few seconds of two minutes.
      expect(error.retryAfter).toBeGreaterThan(110_000)
      expect(error.retryAfter).toBeLessThanOrEqual(120_000)

      const nonsense = yield* serve(reply(429, "", { "retry-after": "soon" }))
      expect(yield* failureOf(Http.get(nonsense.url))).not.toHaveProperty("retryAfter")
    }))

  it.scopedLive("connection refused is HttpRetryable with no status, saying so", () =>
    Effect.gen(function*() {
      const port = yield* closedPort
      const error = yield* failureOf(Http.get(`http://127.0.0.1:${port}/x`))
      expect(error).toBeInstanceOf(Http.HttpRetryable)
      expect(error).not.toHaveProperty("status")
      expect((error as Http.HttpRetryable).reason).toContain("connection refused (ECONNREFUSED)")
    }))

  it.scopedLive("a network failure's reason does not repeat the URL's secrets", () =>
    Effect.gen(function*() {
      const port = yield* closedPort
      const error = yield* failureOf(Http.get(`http://127.0.0.1:${port}/x?token=s3cret`))
      expect(error).toMatchObject({ _tag: "HttpRetryable", url: `http://127.0.0.1:${port}/x?…` })
      expect(JSON.stringify(error)).not.toContain("s3cret")
    }))

  it.scopedLive("a server slower than the timeout is HttpRetryable (timed out), and the call does not wait for it", () =>
    Effect.gen(function*() {
      const server = yield* serve((_, res) => {
        const timer = setTimeout(() => res.end("late"), 10_000)
        res.on("close", () => clearTimeout(timer))
      })
      const error = yield* failureOf(Http.get(server.url, { timeout: "200 millis" }))
      expect(error).toMatchObject({ _tag: "HttpRetryable", reason: "timed out after 200ms" })
      expect(error).not.toHaveProperty("status")
    }))

  it.scopedLive("errors keep the URL without its credentials or query string; credentials are sent as basic authentication", () =>
    Effect.gen(function*() {
      const server = yield* serve(reply(404, ""))
      const withSecrets = server.url.replace("http://", "http://user:hunter2@") + "/items?api_key=s3cret#frag"
      const error = yield* failureOf(Http.get(withSecrets))
      expect((error as Http.HttpRejected).url).toBe(`${server.url}/items?…`)
      expect(JSON.stringify(error)).not.toContain("s3cret")
      expect(JSON.stringify(error)).not.toContain("hunter2")
      // The server still gets them: the query as sent, the credentials as basic authentication.
      expect(server.seen[0].url).toBe("/items?api_key=s3cret")
      expect(server.seen[0].headers.authorization).toBe(`Basic ${Buffer.from("user:hunter2").toString("base64")}`)
    }))

  it.scopedLive("uses the HttpClient in context when there is one", () =>
    Effect.gen(function*() {
      const server = yield* serve((req, res) => reply(200, JSON.stringify(req.headers["x-via"] ?? null))(req, res))
      const tagged = Layer.effect(
        HttpClient.HttpClient,
        Effect.map(HttpClient.HttpClient, HttpClient.mapRequest(HttpClientRequest.setHeader("x-via", "context")))
      ).pipe(Layer.provide(FetchHttpClient.layer))
      expect(yield* Effect.provide(Http.get(server.url), tagged)).toBe("context")
      expect(yield* Http.get(server.url)).toBeNull()
    }))

  it.effect("the errors survive the journal: encoded and decoded with their schema, class and fields", () =>
    Effect.gen(function*() {
      const errors = [
        new Http.HttpRetryable({ method: "GET", url: "http://x/a", status: 429, reason: "HTTP 429", retryAfter: 7000 }),
        new Http.HttpRetryable({ method: "GET", url: "http://x/a", reason: "timed out after 1s" }),
        new Http.HttpRejected({ method: "POST", url: "http://x/b", status: 404, body: "gone" }),
        new Http.HttpInvalidResponse({ method: "GET", url: "http://x/c", status: 200, detail: "sku", body: "{}" })
      ]
      for (const error of errors) {
        const encoded = yield* Schema.encode(Http.HttpError)(error)
        const decoded = yield* Schema.decodeUnknown(Http.HttpError)(JSON.parse(JSON.stringify(encoded)))
        expect(decoded).toEqual(error)
        expect(decoded.constructor).toBe(error.constructor)
        expect(Failure.isRetryable(decoded)).toBe(error._tag === "HttpRetryable")
      }
    }))
})

describe("Http.parseRetryAfter", () => {
  const now = Date.parse("2026-03-01T12:00:00.000Z")
  it("reads whole seconds and HTTP dates; a past date is 0; anything else is nothing", () => {
    expect(Http.parseRetryAfter("0", now)).toBe(0)
    expect(Http.parseRetryAfter(" 120 ", now)).toBe(120_000)
    expect(Http.parseRetryAfter("Sun, 01 Mar 2026 12:01:30 GMT", now)).toBe(90_000)
    expect(Http.parseRetryAfter("Sun, 01 Mar 2026 11:00:00 GMT", now)).toBe(0)
    for (const bad of ["", "1.5", "-3", "soon", "5 seconds", "2026-03-01"]) {
      expect(Http.parseRetryAfter(bad, now), bad).toBeUndefined()
    }
  })
})

describe("Http.step", () => {
  const Price = Schema.Struct({ sku: Schema.String, cents: Schema.Number })

  const fetchPrice = (base: () => string) =>
    Http.step({
      name: "fetch-price",
      request: (sku: string) => ({ url: `${base()}/prices/${sku}`, timeout: "5 seconds" }),
      success: Price,
      retry: Retry.fixed({ delay: "0 millis", attempts: 5 }),
      idempotencyKey: "Idempotency-Key"
    })

  const run = <W extends Workflow.Any>(workflow: W, input: Workflow.Input<W>) =>
    Effect.gen(function*() {
      const client = yield* Client.Client
      const { runId } = yield* client.start(workflow, input)
      yield* Runner.claimAndExecute(workflow, runId)
      const journal = yield* Effect.flatMap(Store, (store) => store.readJournal(runId))
      return { runId, exit: yield* Effect.exit(client.result({ runId, workflow })), journal }
    }).pipe(Effect.provide(Layer.provideMerge(Client.layer, MemoryStore.layer)))

  it.scopedLive("is retried through a flaky server until it succeeds, with one idempotency key for every attempt", () =>
    Effect.gen(function*() {
      let calls = 0
      const server = yield* serve((req, res) => {
        calls++
        if (calls === 1) return reply(503, `{"error":"warming up"}`, { "retry-after": "0" })(req, res)
        if (calls === 2) return reply(429, "")(req, res)
        reply(200, `{"sku":"book","cents":1250}`)(req, res)
      })
      const price = fetchPrice(() => server.url)
      const workflow = Workflow.make({
        name: "pricing",
        input: Schema.String,
        success: Price,
        error: Http.HttpError,
        run: (sku) => price(sku)
      })
      const { exit, journal, runId } = yield* run(workflow, "book")
      expect(exit).toEqual(Exit.succeed({ sku: "book", cents: 1250 }))
      expect(server.seen.map((r) => r.url)).toEqual(["/prices/book", "/prices/book", "/prices/book"])
      const keys = server.seen.map((r) => r.headers["idempotency-key"])
      expect(keys).toEqual([`${runId}/fetch-price`, `${runId}/fetch-price`, `${runId}/fetch-price`])
      // Every attempt is in the journal, the failed ones with their typed errors.
      expect(journal.attempts.map((a) => [a.attempt, a.outcome])).toEqual([[1, "failure"], [2, "failure"], [
        3,
        "success"
      ]])
      expect(journal.attempts[0].error).toMatchObject({ _tag: "HttpRetryable", status: 503, retryAfter: 0 })
      expect(journal.attempts[1].error).toMatchObject({ _tag: "HttpRetryable", status: 429 })
    }))

  it.scopedLive("a 404 is not retried: the step fails at once with HttpRejected, decoded from the journal", () =>
    Effect.gen(function*() {
      const server = yield* serve(reply(404, `{"error":"unknown sku"}`))
      const price = fetchPrice(() => server.url)
      const workflow = Workflow.make({
        name: "pricing-404",
        input: Schema.String,
        success: Price,
        error: Http.HttpError,
        run: (sku) => price(sku)
      })
      const { exit, journal } = yield* run(workflow, "nope")
      expect(server.seen).toHaveLength(1)
      expect(journal.attempts).toEqual([expect.objectContaining({ attempt: 1, stopReason: "not-retryable" })])
      expect(Exit.isFailure(exit)).toBe(true)
      const failure = yield* Effect.flip(exit)
      expect(failure).toBeInstanceOf(Http.HttpRejected)
      expect(failure).toMatchObject({ status: 404, body: `{"error":"unknown sku"}` })
    }))
})
