/**
 * HTTP calls for steps: a request over @effect/platform's HttpClient whose every outcome is typed.
 * A 2xx is the decoded body; 408, 429, 5xx, a timeout or a network failure is `HttpRetryable`
 * (`retryable = true`, with the server's Retry-After as `retryAfter` in milliseconds), so a step's
 * default retry policy retries it; any other status is `HttpRejected` (retrying cannot help), with the
 * status and an excerpt of the body. All are Schema.TaggedError: they travel through the journal.
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type { HttpMethod } from "@effect/platform/HttpMethod"
import { type Retry, Step } from "@weft/core"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"

/**
 * A call that may succeed if made again: a 408, 429 or 5xx response, a timeout, or a network
 * failure (connection refused or reset, DNS). `retryAfter` is the server's Retry-After, in
 * milliseconds from when the response arrived, when it sent one.
 */
export class HttpRetryable extends Schema.TaggedError<HttpRetryable>("@weft/runtime/HttpRetryable")("HttpRetryable", {
  method: Schema.String,
  /** The URL without its query string or credentials (they may hold secrets; the journal keeps this). */
  url: Schema.String,
  /** The response's status, when there was a response. */
  status: Schema.optional(Schema.Number),
  /** What happened, in words: `HTTP 503`, `timed out after 5000ms`, `connection refused (ECONNREFUSED)`. */
  reason: Schema.String,
  /** How long the server asked to wait before the next call, in milliseconds (Retry-After). */
  retryAfter: Schema.optional(Schema.Number),
  /** The start of the response's body, when there was one. */
  body: Schema.optional(Schema.String)
}) {
  readonly retryable = true
  get message(): string {
    return `${this.method} ${this.url}: ${this.reason}${
      this.retryAfter === undefined ? "" : `; retry after ${this.retryAfter}ms`
    }`
  }
}

/** A response that another identical call would get too: a 4xx other than 408 and 429 (or a 3xx not followed). */
export class HttpRejected extends Schema.TaggedError<HttpRejected>("@weft/runtime/HttpRejected")("HttpRejected", {
  method: Schema.String,
  /** The URL without its query string or credentials. */
  url: Schema.String,
  status: Schema.Number,
  /** The start of the response's body (at most 500 characters): the server's explanation. */
  body: Schema.String
}) {
  get message(): string {
    return `${this.method} ${this.url}: HTTP ${this.status}${this.body === "" ? "" : `: ${this.body.slice(0, 200)}`}`
  }
}

/** A 2xx response whose body is not what the request's `success` schema expects (or not JSON when it must be). */
export class HttpInvalidResponse
  extends Schema.TaggedError<HttpInvalidResponse>("@weft/runtime/HttpInvalidResponse")("HttpInvalidResponse", {
    method: Schema.String,
    url: Schema.String,
    status: Schema.Number,
    /** What does not match, with the path of the field. */
    detail: Schema.String,
    /** The start of the body. */
    body: Schema.String
  })
{
  get message(): string {
    return `${this.method} ${this.url}: HTTP ${this.status} with an unexpected body: ${this.detail}`
  }
}

/** Every failure of an HTTP call. */
export type HttpError = HttpRetryable | HttpRejected | HttpInvalidResponse

/** The schema of every failure of an HTTP call: the `error` of a step that makes one. */
export const HttpError: Schema.Union<[typeof HttpRetryable, typeof HttpRejected, typeof HttpInvalidResponse]> = Schema
  .Union(HttpRetryable, HttpRejected, HttpInvalidResponse)

/** The longest body excerpt an error keeps. */
export const bodyExcerptLength = 500

/** The timeout of a call that gives none. */
export const defaultTimeout: Duration.Duration = Duration.seconds(30)

/** A request. */
export interface Request {
  /** Default `GET`. */
  readonly method?: HttpMethod | undefined
  readonly url: string | URL
  readonly headers?: Readonly<Record<string, string>> | undefined
  /** A JSON body (sent with `content-type: application/json`). */
  readonly json?: unknown
  /** A text body, when not `json`. */
  readonly text?: string | undefined
  /**
   * The limit on the whole call, response body included; past it the call fails with HttpRetryable.
   * Default 30 seconds: a call with no limit can hang a step forever.
   */
  readonly timeout?: Duration.DurationInput | undefined
}

/** A request whose 2xx body is decoded with `success`. */
export interface RequestWith<A, I> extends Request {
  /**
   * Decodes the body of a 2xx response (parsed as JSON, or given as text when its content type is
   * not JSON). Without it, the call succeeds with the parsed JSON, the text, or undefined when empty.
   */
  readonly success?: Schema.Schema<A, I, never> | undefined
}

/**
 * Makes an HTTP call and classifies its outcome (see the module). Uses the HttpClient in context
 * when there is one (to add tracing, a proxy, a test double), otherwise the platform's fetch.
 *
 * @example
 * const Rate = Schema.Struct({ currency: Schema.String, rate: Schema.Number })
 * const rate = Http.request({ url: "https://rates.example/eur", success: Rate, timeout: "5 seconds" })
 * // Effect<{ currency: string; rate: number }, HttpRetryable | HttpRejected | HttpInvalidResponse>
 */
export const request = <A = unknown, I = unknown>(options: RequestWith<A, I>): Effect.Effect<A, HttpError> =>
  Effect.gen(function*() {
    const method = options.method ?? "GET"
    const url = shownUrl(options.url)
    const timeout = Duration.decode(options.timeout ?? defaultTimeout)
    const response = yield* Effect.flatMap(
      client,
      (http) =>
        Effect.flatMap(
          http.execute(build(method, options)),
          (response) =>
            Effect.map(response.text, (text) => ({ status: response.status, headers: response.headers, text }))
        )
    ).pipe(
      Effect.catchAll((error) => transportFailure(method, url, error)),
      Effect.timeoutFail({
        duration: timeout,
        onTimeout: () => new HttpRetryable({ method, url, reason: `timed out after ${Duration.format(timeout)}` })
      })
    )
    const now = yield* Clock.currentTimeMillis
    const failure = classify({
      method,
      url,
      status: response.status,
      headers: response.headers,
      body: response.text,
      now
    })
    if (failure !== undefined) return yield* Effect.fail(failure)
    return yield* decodeBody(options, method, url, response)
  })

/** A GET. */
export const get = <A = unknown, I = unknown>(
  url: string | URL,
  options: Omit<RequestWith<A, I>, "method" | "url" | "json" | "text"> = {}
): Effect.Effect<A, HttpError> => request({ ...options, method: "GET", url })

/** A POST, usually with a `json` body. */
export const post = <A = unknown, I = unknown>(
  url: string | URL,
  options: Omit<RequestWith<A, I>, "method" | "url"> = {}
): Effect.Effect<A, HttpError> => request({ ...options, method: "POST", url })

/**
 * A step that makes one HTTP call: journaled with `success` (plain JSON without it), failing with
 * `HttpError`, retried by `retry` (default: the step default, which retries HttpRetryable and waits
 * at least its `retryAfter`). With `idempotencyKey`, the step's idempotency key (the same for every
 * attempt of this step in this run, before and after a crash) goes in that header, so that a server
 * that supports it applies a retried POST once.
 *
 * @example
 * const charge = Http.step({
 *   name: "charge-card",
 *   request: (order: Order) => ({ method: "POST", url: `${gateway}/charges`, json: order, timeout: "10 seconds" }),
 *   success: Schema.Struct({ chargeId: Schema.String }),
 *   retry: Retry.exponential({ base: "500 millis", attempts: 5, jitter: true }),
 *   idempotencyKey: "Idempotency-Key"
 * })
 * // in a workflow: const { chargeId } = yield* charge(order)
 */
export const step = <Args extends ReadonlyArray<unknown>, A = unknown, I = unknown>(options: {
  /** The step's name: unique per step, it identifies the step in the journal. */
  readonly name: string
  /** The request, from the step's arguments. */
  readonly request: (...args: Args) => Request
  /** Decodes the 2xx body and encodes it into the journal. */
  readonly success?: Schema.Schema<A, I, never> | undefined
  /** The retry policy. Default `Retry.defaultPolicy` (3 attempts; HttpRetryable is retryable). */
  readonly retry?: Retry.Policy<HttpError["_tag"]> | undefined
  /** The header that carries the step's idempotency key, e.g. `Idempotency-Key`. Default: none. */
  readonly idempotencyKey?: string | undefined
}): Step.Step<Args, A, HttpError, never> =>
  Step.make({
    name: options.name,
    success: options.success,
    error: HttpError,
    retry: options.retry,
    run: (...args: Args) =>
      Effect.flatMap(Step.context, (context) => {
        const made = options.request(...args)
        return request<A, I>({
          ...made,
          success: options.success,
          headers: options.idempotencyKey === undefined
            ? made.headers
            : { ...made.headers, [options.idempotencyKey]: context.idempotencyKey }
        })
      })
  }) as never

/**
 * The outcome of a response, when it is a failure: HttpRetryable for 408, 429 and 5xx (with
 * `retryAfter` from a Retry-After header), HttpRejected for any other status outside 2xx.
 */
export const classify = (response: {
  readonly method: string
  readonly url: string
  readonly status: number
  readonly headers: Readonly<Record<string, string | undefined>>
  readonly body: string
  /** When the response arrived (epoch milliseconds), to turn a Retry-After date into a delay. */
  readonly now: number
}): HttpRetryable | HttpRejected | undefined => {
  const { method, status, url } = response
  if (status >= 200 && status < 300) return undefined
  const body = excerpt(response.body)
  if (status === 408 || status === 429 || status >= 500) {
    const header = response.headers["retry-after"]
    const retryAfter = header === undefined ? undefined : parseRetryAfter(header, response.now)
    return new HttpRetryable({
      method,
      url,
      status,
      reason: `HTTP ${status}`,
      ...(retryAfter === undefined ? {} : { retryAfter }),
      ...(body === "" ? {} : { body })
    })
  }
  return new HttpRejected({ method, url, status, body })
}

/**
 * A Retry-After header as a delay in milliseconds from `now`: whole seconds (`120`) or an HTTP date
 * (`Wed, 21 Oct 2015 07:28:00 GMT`; a date in the past is 0). Undefined when it is neither.
 */
export const parseRetryAfter = (value: string, now: number): number | undefined => {
  const text = value.trim()
  if (/^\d+$/.test(text)) return Number(text) * 1000
  // Only the forms of an HTTP date: Date.parse would take "5" or "1.5" for a date too.
  if (!/^[A-Za-z]{3},? /.test(text)) return undefined
  const at = Date.parse(text)
  return Number.isNaN(at) ? undefined : Math.max(0, at - now)
}

// -- private helpers --

// The client in context, or fetch: a step can make a call without the workflow module providing one.
const client: Effect.Effect<HttpClient.HttpClient> = Effect.flatMap(
  Effect.serviceOption(HttpClient.HttpClient),
  Option.match({
    onSome: Effect.succeed,
    onNone: () => Effect.provide(HttpClient.HttpClient, FetchHttpClient.layer)
  })
)

// fetch refuses a URL with credentials: they go as basic authentication, as curl sends them.
const build = (method: HttpMethod, options: Request): HttpClientRequest.HttpClientRequest => {
  let url = options.url
  let headers = options.headers ?? {}
  const parsed = URL.canParse(String(url)) ? new URL(url) : undefined
  if (parsed !== undefined && (parsed.username !== "" || parsed.password !== "")) {
    const credentials = `${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`
    const given = Object.keys(headers).some((name) => name.toLowerCase() === "authorization")
    if (!given) headers = { ...headers, authorization: `Basic ${Buffer.from(credentials).toString("base64")}` }
    parsed.username = ""
    parsed.password = ""
    url = parsed
  }
  const made = HttpClientRequest.make(method)(url, { headers })
  if (options.json !== undefined) return HttpClientRequest.bodyUnsafeJson(made, options.json)
  if (options.text !== undefined) return HttpClientRequest.bodyText(made, options.text)
  return made
}

/** A network failure is retryable; a request that cannot be made at all (a bad URL, a body that does not encode) is a bug. */
const transportFailure = (
  method: string,
  url: string,
  error: HttpClientError.HttpClientError
): Effect.Effect<never, HttpRetryable> => {
  if (error._tag === "RequestError" && error.reason !== "Transport") {
    return Effect.die(new Error(`${method} ${url}: the request cannot be made (${error.reason})`, { cause: error }))
  }
  return Effect.fail(new HttpRetryable({ method, url, reason: networkReason(error) }))
}

/** The network failure in words: fetch hides the system's error code in its cause. */
const networkReason = (error: HttpClientError.HttpClientError): string => {
  let current: unknown = error.cause
  for (let depth = 0; depth < 5 && current !== undefined && current !== null; depth++) {
    const code = (current as { readonly code?: unknown }).code
    if (typeof code === "string") {
      const words: Record<string, string> = {
        ECONNREFUSED: "connection refused",
        ECONNRESET: "connection reset",
        ENOTFOUND: "host not found",
        ETIMEDOUT: "connection timed out",
        EAI_AGAIN: "DNS lookup failed",
        UND_ERR_SOCKET: "connection closed by the server"
      }
      return `${words[code] ?? "network failure"} (${code})`
    }
    current = (current as { readonly cause?: unknown }).cause
  }
  // The platform's message repeats the request's URL, query and credentials included: not kept.
  const detail = error.cause instanceof Error ? error.cause.message : error.description ?? error.reason
  return `network failure: ${detail.replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s)]+/gi, (url) => shownUrl(url))}`
}

const decodeBody = <A, I>(
  options: RequestWith<A, I>,
  method: string,
  url: string,
  response: { readonly status: number; readonly headers: Readonly<Record<string, string>>; readonly text: string }
): Effect.Effect<A, HttpInvalidResponse> =>
  Effect.gen(function*() {
    const invalid = (detail: string) =>
      new HttpInvalidResponse({ method, url, status: response.status, detail, body: excerpt(response.text) })
    const isJson = /\bjson\b/i.test(response.headers["content-type"] ?? "")
    let body: unknown = response.text === "" ? undefined : response.text
    if (isJson && response.text !== "") {
      body = yield* Effect.try({
        try: () => JSON.parse(response.text) as unknown,
        catch: (error) => invalid(`the body is not valid JSON: ${(error as Error).message}`)
      })
    }
    if (options.success === undefined) return body as A
    return yield* Effect.mapError(
      Schema.decodeUnknown(options.success)(body),
      (error) => invalid(ParseResult.TreeFormatter.formatErrorSync(error))
    )
  })

/** The URL as errors keep it: no credentials, no query string (API keys live there), no fragment. */
const shownUrl = (url: string | URL): string => {
  try {
    const parsed = new URL(url)
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}${parsed.search === "" ? "" : "?…"}`
  } catch {
    return String(url).replace(/[?#].*$/, "")
  }
}

const excerpt = (text: string): string =>
  text.length <= bodyExcerptLength ? text : `${text.slice(0, bodyExcerptLength - 1)}…`
