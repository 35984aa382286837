// The content store: verified puts, ingest commit, refs, and two processes
// putting the same blob at once.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "image/store.hpp"
#include "util/file.hpp"
#include "util/tests/tmpdir.hpp"

using img::Digest;
using img::Store;

TEST_CASE("put_blob verifies and stores", "[store]") {
    TempDir t;
    auto s = Store::open(t / "root");
    REQUIRE(s);
    Digest d = Digest::of("hello");
    CHECK_FALSE(s->has_blob(d));
    CHECK_FALSE(s->put_blob(d, "hellO"));  // wrong content: refused
    CHECK_FALSE(s->has_blob(d));
    REQUIRE(s->put_blob(d, "hello"));
    CHECK(s->has_blob(d));
    CHECK(*s->read_blob(d) == "hello");
    CHECK(*s->blob_size(d) == 5);
    REQUIRE(s->put_blob(d, "hello"));  // idempotent
    auto all = s->list_blobs();
    REQUIRE(all);
    REQUIRE(all->size() == 1);
    CHECK((*all)[0] == d);
    // No temporaries left behind.
    auto ingest = util::read_file(t / "root/ingest/" + std::string(d.hex()) + ".put");
    CHECK_FALSE(ingest);
}

TEST_CASE("commit_ingest checks size and hash", "[store]") {
    TempDir t;
    auto s = Store::open(t.path);
    REQUIRE(s);
    Digest d = Digest::of("payload");
    auto lock = s->lock_blob(d);
    REQUIRE(lock);
    REQUIRE(util::write_all(util::open_file(s->ingest_path(d), O_WRONLY | O_CREAT, 0644)->get(), "payload"));
    REQUIRE(util::atomic_write_file(s->ingest_state_path(d), "x"));
    CHECK_FALSE(s->commit_ingest(d, 6, false));
    REQUIRE(util::write_all(util::open_file(s->ingest_path(d), O_WRONLY | O_TRUNC)->get(), "pAyload"));
    CHECK_FALSE(s->commit_ingest(d, 7, false));  // wrong bytes
    CHECK_FALSE(s->has_blob(d));
    REQUIRE(util::write_all(util::open_file(s->ingest_path(d), O_WRONLY | O_TRUNC)->get(), "payload"));
    REQUIRE(s->commit_ingest(d, 7, false));
    CHECK(s->has_blob(d));
    CHECK_FALSE(util::path_exists(s->ingest_path(d)));
    CHECK_FALSE(util::path_exists(s->ingest_state_path(d)));
}

TEST_CASE("refs", "[store]") {
    TempDir t;
    auto s = Store::open(t.path);
    REQUIRE(s);
    Digest a = Digest::of("a"), b = Digest::of("b");
    REQUIRE(s->set_ref("localhost:5000/app:1.0", a));
    REQUIRE(s->set_ref("registry.example/x/y@sha256:" + std::string(64, '0'), b));
    auto r = s->get_ref("localhost:5000/app:1.0");
    REQUIRE(r);
    REQUIRE(r->has_value());
    CHECK(**r == a);
    CHECK_FALSE(s->get_ref("localhost:5000/app:2.0")->has_value());
    REQUIRE(s->set_ref("localhost:5000/app:1.0", b));
    CHECK(**s->get_ref("localhost:5000/app:1.0") == b);
    auto all = s->list_refs();
    REQUIRE(all);
    CHECK(all->size() == 2);
    REQUIRE(s->remove_ref("localhost:5000/app:1.0"));
    CHECK_FALSE(s->remove_ref("localhost:5000/app:1.0"));
    CHECK(s->list_refs()->size() == 1);
}

TEST_CASE("two processes put the same blob at once", "[store]") {
    TempDir t;
    REQUIRE(Store::open(t.path));
    std::string data(8 << 20, 'z');
    for (size_t i = 0; i < data.size(); i += 4096) data[i] = static_cast<char>(i >> 12);
    Digest d = Digest::of(data);
    std::vector<pid_t> kids;
    for (int k = 0; k < 4; ++k) {
        pid_t pid = fork();
        if (pid == 0) {
            auto s = Store::open(t.path);
            if (!s) _exit(2);
            for (int i = 0; i < 3; ++i)
                if (!s->put_blob(d, data)) _exit(3);
            _exit(0);
        }
        kids.push_back(pid);
    }
    for (pid_t p : kids) {
        int st = 0;
        waitpid(p, &st, 0);
        CHECK((WIFEXITED(st) && WEXITSTATUS(st) == 0));
    }
    auto s = Store::open(t.path);
    auto back = s->read_blob(d);
    REQUIRE(back);
    CHECK(Digest::of(*back) == d);
}
