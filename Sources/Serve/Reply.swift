import Failures
import Foundation
import Hummingbird
import Registry

/// Responses, and the middleware that turns failures into pages.
enum Reply {
    static func bytes(_ data: Data, type: String, status: HTTPResponse.Status = .ok, extra: HTTPFields = [:]) -> Response {
        var headers: HTTPFields = [.contentType: type, .cacheControl: "no-store", .init("X-Content-Type-Options")!: "nosniff",
                                   // The page may load only what lab serves.
                                   .init("Content-Security-Policy")!: "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                                       + "script-src 'self'"]
        headers.append(contentsOf: extra)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func html(_ page: String, status: HTTPResponse.Status = .ok) -> Response {
        bytes(Data(page.utf8), type: "text/html; charset=utf-8", status: status)
    }

    static func json<T: Encodable>(_ value: T) throws -> Response {
        let e = JSONEncoder()
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return bytes(try e.encode(value), type: "application/json")
    }

    static func problem(_ status: HTTPResponse.Status, _ line: String) -> Response {
        html(HTML.page(title: "\(status.code)",
                       body: "<h1>\(status.code) \(HTML.esc(status.reasonPhrase))</h1><p>\(HTML.esc(line))</p>"), status: status)
    }
}

/// Only GET (and HEAD); a missing thing is a 404 page, a registry failure one line.
struct Guard: RouterMiddleware {
    typealias Context = BasicRequestContext
    let site: Site

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        site.onRequest?(request.uri.path)
        guard request.method == .get || request.method == .head else {
            var r = Reply.problem(.methodNotAllowed, "lab serve is read-only: GET only")
            r.headers[.allow] = "GET, HEAD"
            return r
        }
        do {
            return try await next(request, context)
        } catch let e as NotFound {
            return Reply.problem(.notFound, e.message)
        } catch let e as HTTPError where e.status == .notFound {
            return Reply.problem(.notFound, "nothing at \(request.uri.path)")
        } catch let e as Failure where e.kind == .registry {
            return Reply.problem(.internalServerError, e.description)
        } catch {
            return Reply.problem(.internalServerError, "\(error)")
        }
    }
}
