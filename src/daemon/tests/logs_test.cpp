// svc::Logs: a container's `current` file copied into rotated files within
// their caps, a bounded ring, followers; the copied range punched out and
// the offset persisted so a new Logs (a restarted daemon) continues where
// the last stopped; the --since filter; the memory a container costs.
#include <catch2/catch.hpp>

#include <malloc.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "daemon/logs.hpp"
#include "util/file.hpp"
#include "util/strings.hpp"

namespace {

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/berth-logs.XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~TempDir() { (void)util::remove_tree(path); }
};

std::unique_ptr<util::EventLoop> make_loop() {
    auto l = util::EventLoop::create();
    REQUIRE(l);
    return std::move(*l);
}

void write_lines(int fd, const std::string &prefix, int from, int to) {
    std::string s;
    for (int i = from; i < to; i++) s += util::cat(prefix, i, "\n");
    REQUIRE(util::write_all(fd, s));
}

uint64_t file_size(const std::string &p) {
    struct stat st;
    return ::stat(p.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

std::vector<std::string> texts(const std::vector<svc::LogLine> &lines) {
    std::vector<std::string> out;
    for (const auto &l : lines) out.push_back(l.text);
    return out;
}

/// A temporary log dir, a loop and a config naming that dir.
struct Env {
    TempDir d;
    std::unique_ptr<util::EventLoop> loop = make_loop();
    svc::LogConfig c;
    Env() { c.dir = d.path; }
};

/// `name` opened fresh: the container's writer.
util::UniqueFd writer(svc::Logs &logs, const std::string &name) {
    auto w = logs.open(name, true);
    REQUIRE(w);
    return std::move(*w);
}

int64_t realtime_ms() {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace

TEST_CASE("log lines written to current reach the log file and the ring, stamped") {
    Env e;
    svc::Logs logs(*e.loop, e.c);
    auto w = writer(logs, "web");
    const int64_t before = realtime_ms();
    write_lines(w.get(), "line ", 0, 3);
    REQUIRE(logs.drain("web"));
    auto last = logs.last("web", 10);
    CHECK(texts(last) == std::vector<std::string>{"line 0", "line 1", "line 2"});
    CHECK(last[0].time_ms >= before);
    auto file = util::read_file(e.d.path + "/web/log");
    REQUIRE(file);
    CHECK(file->size() == 3 * (24 + 1 + 7));
    CHECK(svc::parse_log_time(*file) == last[0].time_ms);
}

TEST_CASE("log time round-trips through its text form") {
    CHECK(svc::log_time(1764556380123) == "2025-12-01T02:33:00.123Z");
    CHECK(svc::parse_log_time("2025-12-01T02:33:00.123Z hello") == 1764556380123);
    CHECK(svc::parse_log_time("not a time") == -1);
}

TEST_CASE("rotated log files stay within the per-container cap") {
    Env e;
    e.c.bytes_per_container = 4096;
    e.c.files = 4;
    svc::Logs logs(*e.loop, e.c);
    auto w = writer(logs, "app");
    for (int round = 0; round < 20; round++) {
        write_lines(w.get(), "some output line number ", round * 20, round * 20 + 20);
        REQUIRE(logs.drain("app"));
    }
    uint64_t total = 0;
    for (const char *f : {"log", "log.1", "log.2", "log.3"}) {
        uint64_t sz = file_size(e.d.path + "/app/" + f);
        CHECK(sz <= 1024);
        CHECK(sz > 0);
        total += sz;
    }
    CHECK(total <= 4096);
    CHECK_FALSE(util::path_exists(e.d.path + "/app/log.4"));
    // The newest lines are in `log`, the last ones asked for come back in order.
    auto last = logs.last("app", 2);
    CHECK(texts(last) == std::vector<std::string>{"some output line number 398", "some output line number 399"});
}

TEST_CASE("the oldest rotated files of any container go when all pass the total cap") {
    Env e;
    e.c.bytes_per_container = 4096;
    e.c.bytes_total = 5000;
    e.c.files = 4;
    svc::Logs logs(*e.loop, e.c);
    auto a = writer(logs, "a");
    auto b = writer(logs, "b");
    for (int round = 0; round < 20; round++) {
        write_lines(a.get(), "container a says ", round * 20, round * 20 + 20);
        write_lines(b.get(), "container b says ", round * 20, round * 20 + 20);
        logs.drain_all();
    }
    uint64_t total = 0;
    for (const char *n : {"a", "b"})
        for (const char *f : {"log", "log.1", "log.2", "log.3"}) total += file_size(util::cat(e.d.path, "/", n, "/", f));
    CHECK(total <= 5000);
    CHECK(file_size(e.d.path + "/a/log") > 0);
    CHECK(file_size(e.d.path + "/b/log") > 0);
}

TEST_CASE("the ring keeps the newest lines within its byte bound") {
    Env e;
    e.c.ring_bytes = 2048;
    svc::Logs logs(*e.loop, e.c);
    auto w = writer(logs, "r");
    write_lines(w.get(), "ring line ", 0, 1000);
    REQUIRE(logs.drain("r"));
    CHECK(logs.ring_bytes("r") <= 2048);
    CHECK(logs.ring_bytes("r") > 2048 - 100);
    CHECK(texts(logs.last("r", 2)) == std::vector<std::string>{"ring line 998", "ring line 999"});
    // More than the ring holds: read from the files.
    auto all = logs.last("r", 1000);
    REQUIRE(all.size() == 1000);
    CHECK(all.front().text == "ring line 0");
}

TEST_CASE("the copied part of current is punched out and the offset persisted") {
    Env e;
    e.c.bytes_per_container = 64 << 20;
    svc::Logs logs(*e.loop, e.c);
    auto w = writer(logs, "p");
    std::string big(999, 'x');
    for (int i = 0; i < 1024; i++) REQUIRE(util::write_all(w.get(), big + "\n"));
    REQUIRE(logs.drain("p"));
    struct stat st;
    REQUIRE(::stat((e.d.path + "/p/current").c_str(), &st) == 0);
    CHECK(st.st_size == 1024 * 1000);
    CHECK(st.st_blocks * 512 <= 8192);  // 1000 KB written, at most the last partial blocks kept
    CHECK(util::read_file(e.d.path + "/p/offset").value_or("") == util::cat(1024 * 1000));
}

TEST_CASE("no line is lost or repeated across a restart of the log follower") {
    Env e;
    util::UniqueFd w;
    {
        svc::Logs logs(*e.loop, e.c);
        w = writer(logs, "k");
        write_lines(w.get(), "n", 0, 100);
        REQUIRE(logs.drain("k"));
        write_lines(w.get(), "n", 100, 150);
        // Destroyed with lines pending: it copies them (a killed daemon
        // would not; the next case covers that).
    }
    write_lines(w.get(), "n", 150, 300);  // the container writes while no daemon runs
    svc::Logs again(*e.loop, e.c);
    REQUIRE(again.attach("k"));
    write_lines(w.get(), "n", 300, 310);
    REQUIRE(again.drain("k"));
    auto all = again.last("k", 100000);
    REQUIRE(all.size() == 310);
    for (int i = 0; i < 310; i++) CHECK(all[static_cast<size_t>(i)].text == util::cat("n", i));
}

TEST_CASE("lines pending when the follower is killed are copied by the next one") {
    Env e;
    auto w = [&] {
        svc::Logs logs(*e.loop, e.c);
        return writer(logs, "z");
    }();
    pid_t p = ::fork();
    REQUIRE(p >= 0);
    if (p == 0) {
        // A daemon that copies 50 lines and dies without its destructor.
        svc::Logs logs(*e.loop, e.c);
        if (!logs.attach("z")) _exit(1);
        std::string s;
        for (int i = 0; i < 50; i++) s += util::cat("m", i, "\n");
        if (!util::write_all(w.get(), s) || !logs.drain("z")) _exit(1);
        if (!util::write_all(w.get(), "m50\nm51\n")) _exit(1);
        _exit(0);
    }
    int status = 0;
    REQUIRE(::waitpid(p, &status, 0) == p);
    REQUIRE(status == 0);
    svc::Logs next(*e.loop, e.c);
    REQUIRE(next.attach("z"));
    auto all = next.last("z", 1000);
    REQUIRE(all.size() == 52);
    CHECK(all[49].text == "m49");
    CHECK(all[51].text == "m51");
}

TEST_CASE("since returns the lines read at or after the time, from the ring and from the files") {
    Env e;
    int64_t t = 0;
    {
        svc::Logs logs(*e.loop, e.c);
        auto w = writer(logs, "s");
        write_lines(w.get(), "old ", 0, 3);
        REQUIRE(logs.drain("s"));
        const int64_t first = logs.last("s", 1)[0].time_ms;
        while (realtime_ms() <= first) ::usleep(1000);
        t = realtime_ms();
        write_lines(w.get(), "new ", 0, 2);
        REQUIRE(logs.drain("s"));
        CHECK(texts(logs.since("s", t)) == std::vector<std::string>{"new 0", "new 1"});
    }
    svc::Logs fresh(*e.loop, e.c);  // an empty ring: the files answer
    CHECK(texts(fresh.since("s", t)) == std::vector<std::string>{"new 0", "new 1"});
    CHECK(fresh.since("s", 0).size() == 5);
}

TEST_CASE("a partial line waits for its newline, and detach takes it as a line") {
    Env e;
    svc::Logs logs(*e.loop, e.c);
    auto w = writer(logs, "q");
    REQUIRE(util::write_all(w.get(), "whole\npart"));
    REQUIRE(logs.drain("q"));
    CHECK(texts(logs.last("q", 10)) == std::vector<std::string>{"whole"});
    REQUIRE(util::write_all(w.get(), "ial\ntail"));
    REQUIRE(logs.drain("q"));
    CHECK(texts(logs.last("q", 10)) == std::vector<std::string>{"whole", "partial"});
    logs.detach("q");
    CHECK(texts(logs.last("q", 10)) == std::vector<std::string>{"whole", "partial", "tail"});
}

TEST_CASE("followers get each new line from the loop's timer") {
    Env e;
    e.c.poll_ms = 20;
    svc::Logs logs(*e.loop, e.c);
    auto w = writer(logs, "f");
    std::vector<std::string> got;
    auto id = logs.follow("f", [&](const svc::LogLine &l) { got.push_back(l.text); });
    write_lines(w.get(), "f", 0, 3);
    const int64_t deadline = util::monotonic_ms() + 5000;
    while (got.size() < 3 && util::monotonic_ms() < deadline) REQUIRE(e.loop->run_once(100));
    CHECK(got == std::vector<std::string>{"f0", "f1", "f2"});
    logs.unfollow(id);
    write_lines(w.get(), "f", 3, 4);
    REQUIRE(logs.drain("f"));
    CHECK(got.size() == 3);
}

TEST_CASE("memory cost of a followed container with a full ring") {
    Env e;
    const int n = 20;
    auto before = mallinfo2().uordblks;
    {
        svc::Logs logs(*e.loop, e.c);
        std::vector<util::UniqueFd> ws;
        for (int i = 0; i < n; i++) {
            auto w = writer(logs, util::cat("m", i));
            write_lines(w.get(), "a typical log line of some eighty characters, give or take, with a counter: ",
                        0, 2000);
            REQUIRE(logs.drain(util::cat("m", i)));
            ws.push_back(std::move(w));
        }
        size_t used = mallinfo2().uordblks - before;
        WARN("log memory per container with a full ring: " << used / n << " bytes (ring bound "
                                                           << e.c.ring_bytes << ")");
        CHECK(used / n <= e.c.ring_bytes + 8192);
        logs.drain_all();
        size_t idle = mallinfo2().uordblks - before;
        CHECK(idle / n <= e.c.ring_bytes + 8192);
    }
}
