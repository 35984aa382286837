// Digests and the resumable SHA-256 state.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include "image/digest.hpp"
#include "util/file.hpp"

using img::Digest;
using img::Sha256;

TEST_CASE("digest of known vectors", "[digest]") {
    CHECK(Digest::of("").str() == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(Digest::of("abc").str() == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(Digest::of("abc").hex() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("digest parsing", "[digest]") {
    std::string good = "sha256:" + std::string(64, 'a');
    REQUIRE(Digest::parse(good));
    CHECK(Digest::parse(good)->str() == good);
    CHECK_FALSE(Digest::parse("sha256:" + std::string(63, 'a')));
    CHECK_FALSE(Digest::parse("sha256:" + std::string(65, 'a')));
    CHECK_FALSE(Digest::parse("sha256:" + std::string(64, 'A')));
    CHECK_FALSE(Digest::parse("sha512:" + std::string(128, 'a')));
    CHECK_FALSE(Digest::parse(std::string(64, 'a')));
    CHECK_FALSE(Digest::parse("sha256:../../../../etc/passwd" + std::string(36, 'a')));
}

TEST_CASE("streaming equals one-shot, across chunk sizes", "[digest]") {
    std::string data;
    for (int i = 0; i < 100000; ++i) data += static_cast<char>(i * 7 + i / 13);
    Digest whole = Digest::of(data);
    for (size_t chunk : {1u, 63u, 64u, 65u, 4096u, 99999u}) {
        Sha256 h;
        for (size_t off = 0; off < data.size(); off += chunk) h.update(std::string_view(data).substr(off, chunk));
        CHECK(h.bytes() == data.size());
        CHECK(h.finish() == whole);
    }
}

TEST_CASE("hash state saved and restored, in another process", "[digest]") {
    std::string data(200001, 'x');
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i % 251);
    Digest whole = Digest::of(data);
    for (size_t cut : {0u, 1u, 64u, 100u, 131072u, 200001u}) {
        Sha256 a;
        a.update(std::string_view(data).substr(0, cut));
        std::string state = a.save_state();
        // Continue in a child process, as a resumed download would after a restart.
        int pfd[2];
        REQUIRE(pipe(pfd) == 0);
        pid_t pid = fork();
        if (pid == 0) {
            close(pfd[0]);
            Sha256 b;
            if (!b.restore_state(state)) _exit(2);
            if (b.bytes() != cut) _exit(3);
            b.update(std::string_view(data).substr(cut));
            std::string d = b.finish().str();
            (void)!write(pfd[1], d.data(), d.size());
            _exit(0);
        }
        close(pfd[1]);
        auto out = util::read_all(pfd[0]);
        close(pfd[0]);
        int status = 0;
        waitpid(pid, &status, 0);
        REQUIRE(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 0);
        REQUIRE(out);
        CHECK(*out == whole.str());
    }
}

TEST_CASE("corrupt hash state is refused", "[digest]") {
    Sha256 a;
    a.update("hello world");
    std::string state = a.save_state();
    Sha256 b;
    CHECK_FALSE(b.restore_state(""));
    CHECK_FALSE(b.restore_state(state.substr(0, state.size() - 1)));
    std::string bad = state;
    bad[20] ^= 1;  // the byte count no longer matches the context
    CHECK_FALSE(b.restore_state(bad));
    REQUIRE(b.restore_state(state));
    b.update("!");
    CHECK(b.finish() == Digest::of("hello world!"));
}

TEST_CASE("of_small (no OpenSSL) equals OpenSSL's digest at every length around the block edges", "[digest]") {
    std::string data;
    for (int n = 0; n <= 300; ++n) {
        INFO("length " << n);
        CHECK(img::Digest::of_small(data) == img::Digest::of(data));
        data.push_back(static_cast<char>((n * 131 + 7) & 0xff));
    }
    CHECK(img::Digest::of_small("abc").str() ==
          "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
