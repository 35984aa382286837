// http_probe: one img::Http driven from the command line, for the tests of
// the HTTP client against real and hostile servers (http_client_test.py).
//
//   http_probe [--ca FILE] [--pin SHA] [--timeout S] [--connect-timeout S]
//              [--speed-limit B --speed-time S] [--limit-rate B]
//              [--method M] [--data STR | --data-file F] [--header H]...
//              [--auth H] [--sink] [--body-limit N] [--no-redirects]
//              [--rcvbuf N] [--repeat N] [--tls-session-dir DIR] URL [URL...]
//   http_probe --answers-in-plain-http URL   (prints "plain yes" or "plain no")
//
// Performs each URL (each --repeat times) on the same Http object, so
// consecutive requests may share a connection. Prints per request
// "status N", "url U", "header name: value" lines, "body N SHA256-less-bytes"
// and the body itself after "body:" (up to 4 KiB); on an error prints
// "error CODE MESSAGE" and exits 1. Exits 2 on bad usage.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "image/http.hpp"
#include "util/fd.hpp"

int main(int argc, char **argv) {
    img::HttpOptions o;
    img::HttpRequest proto;
    std::vector<std::string> urls;
    std::string data_file;
    int repeat = 1;
    bool sink = false;
    bool plain_probe = false;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "%s needs a value\n", a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--ca") o.ca_file = next();
        else if (a == "--pin") o.pinned_key = next();
        else if (a == "--timeout") o.timeout_s = std::atol(next().c_str());
        else if (a == "--connect-timeout") o.connect_timeout_s = std::atol(next().c_str());
        else if (a == "--speed-limit") o.speed_limit = std::atoll(next().c_str());
        else if (a == "--speed-time") o.speed_time_s = std::atol(next().c_str());
        else if (a == "--limit-rate") o.limit_rate = std::atoll(next().c_str());
        else if (a == "--method") proto.method = next();
        else if (a == "--data") proto.body = next();
        else if (a == "--data-file") data_file = next();
        else if (a == "--header") proto.headers.push_back(next());
        else if (a == "--auth") proto.auth_header = next();
        else if (a == "--sink") sink = true;
        else if (a == "--body-limit") proto.body_limit = std::strtoul(next().c_str(), nullptr, 10);
        else if (a == "--no-redirects") proto.follow_redirects = false;
        else if (a == "--rcvbuf") proto.recv_buffer = std::atoi(next().c_str());
        else if (a == "--repeat") repeat = std::atoi(next().c_str());
        else if (a == "--tls-session-dir") o.tls_session_dir = next();
        else if (a == "--answers-in-plain-http") plain_probe = true;
        else if (a.starts_with("--")) {
            std::fprintf(stderr, "unknown option %s\n", a.c_str());
            return 2;
        } else urls.push_back(a);
    }
    if (urls.empty()) return 2;
    auto http = img::Http::create(o);
    if (!http) {
        std::printf("error %d %s\n", http.error().code, http.error().message().c_str());
        return 1;
    }
    if (plain_probe) {
        std::printf("plain %s\n", http->answers_in_plain_http(urls[0]) ? "yes" : "no");
        return 0;
    }
    for (const auto &url : urls) {
        for (int r = 0; r < repeat; r++) {
            img::HttpRequest req = proto;
            req.url = url;
            util::UniqueFd fd;
            if (!data_file.empty()) {
                fd.reset(::open(data_file.c_str(), O_RDONLY | O_CLOEXEC));
                if (!fd) {
                    std::perror("open");
                    return 2;
                }
                req.body_fd = fd.get();
                req.body_len = static_cast<uint64_t>(::lseek(fd.get(), 0, SEEK_END));
                ::lseek(fd.get(), 0, SEEK_SET);
            }
            std::string sunk;
            if (sink)
                req.sink = [&](std::string_view chunk) -> util::Status {
                    sunk.append(chunk);
                    return util::ok();
                };
            auto resp = http->perform(req);
            if (!resp) {
                std::printf("error %d %s\n", resp.error().code, resp.error().message().c_str());
                std::fflush(stdout);
                return 1;
            }
            std::printf("status %ld\nurl %s\n", resp->status, resp->url.c_str());
            for (const auto &[k, v] : resp->headers) std::printf("header %s: %s\n", k.c_str(), v.c_str());
            const std::string &body = sink && resp->status / 100 == 2 ? sunk : resp->body;
            std::printf("body %zu\nbody:%.*s\n", body.size(), static_cast<int>(std::min<size_t>(body.size(), 4096)),
                        body.data());
            std::fflush(stdout);
        }
    }
    return 0;
}
