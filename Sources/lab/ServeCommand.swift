import ArgumentParser
import Failures
import Foundation
import Registry
import Serve
import Sweeps

extension Lab {
    struct ServeCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "serve",
            abstract: "A local, read-only web page over the registry: runs, live curves, comparisons.")

        @OptionGroup var registry: RegistryOptions
        @OptionGroup var folder: SweepFolderOption

        @Option(help: "Port to listen on.")
        var port = 8080

        @Option(help: "Address to bind; any but 127.0.0.1 lets other machines read the registry.")
        var host = "127.0.0.1"

        func validate() throws {
            guard (1...65535).contains(port) else { throw ValidationError("--port must be between 1 and 65535") }
        }

        func run() throws {
            let site = Site(registry: try Registry(readOnly: registry.path), sweeps: folder.store)
            let (host, port, path) = (self.host, self.port, registry.path)
            if !Serve.isLoopback(host) {
                Progress.log("warning: bound to \(host), not 127.0.0.1: anyone who can reach this machine can read \(path) "
                             + "and download its checkpoints")
            }
            let app = Serve.application(site, host: host, port: port) {
                Progress.log("lab serve: http://\(host.contains(":") ? "[\(host)]" : host):\(port)/  (read-only view of \(path); "
                    + "Ctrl-C stops)")
            }
            do { try Serve.runUntilStopped(app) } catch { throw Failure(.io, Serve.describe(error, host: host, port: port)) }
        }
    }
}
