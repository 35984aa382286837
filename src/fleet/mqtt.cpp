// fleet::MqttClient over libmosquitto's "your own event loop" interface:
// mosquitto_socket() is watched on the util::EventLoop (EPOLLIN always;
// EPOLLOUT while the TCP connect is in progress or mosquitto_want_write()),
// ready events call mosquitto_loop_read/loop_write, and a timer calls
// mosquitto_loop_misc for the keepalive pings. After every call into the
// library the watch is brought in line with the library's socket, which it
// may have closed (connection lost) or replaced (reconnect).
//
// libmosquitto is opened with dlopen (util::DynLib) the first time a client
// is opened; its functions are called through a table of pointers resolved
// from the header's own prototypes, so a library without one of them is
// refused in open()'s error.
#include "fleet/mqtt.hpp"

#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <vector>

#include "fleet/resolve.hpp"
#include "util/dynlib.hpp"
#include "util/strings.hpp"

namespace fleet {
namespace {

// The libmosquitto functions used, one table: X(name).
#define MOSQ_FUNCTIONS(X)                                                                                      \
    X(mosquitto_lib_init) X(mosquitto_new) X(mosquitto_destroy) X(mosquitto_int_option) X(mosquitto_tls_set)   \
    X(mosquitto_tls_opts_set) X(mosquitto_will_set) X(mosquitto_connect_async) X(mosquitto_reconnect_async)    \
    X(mosquitto_disconnect) X(mosquitto_subscribe) X(mosquitto_publish) X(mosquitto_loop_read)                \
    X(mosquitto_loop_write) X(mosquitto_loop_misc) X(mosquitto_socket) X(mosquitto_want_write)                 \
    X(mosquitto_connect_callback_set) X(mosquitto_disconnect_callback_set) X(mosquitto_publish_callback_set)  \
    X(mosquitto_message_callback_set) X(mosquitto_log_callback_set) X(mosquitto_strerror)                     \
    X(mosquitto_connack_string) X(mosquitto_reason_string) X(mosquitto_connect_bind_v5)                      \
    X(mosquitto_property_add_int32) X(mosquitto_property_free_all) X(mosquitto_void_option)

#define SYMBOL_NAME(name) #name,
constexpr const char *kSymbols[] = {MOSQ_FUNCTIONS(SYMBOL_NAME)};
#undef SYMBOL_NAME

util::DynLib libmosquitto("libmosquitto.so.1", "libmosquitto (libmosquitto.so.1)", kSymbols);

struct Api {
#define MEMBER(name) decltype(&::name) name;
    MOSQ_FUNCTIONS(MEMBER)
#undef MEMBER
};

// libssl (libmosquitto's own, so already mapped when used), for a broker
// given by name: see named_broker_tls().
#define SSL_FUNCTIONS(X)                                                                                       \
    X(TLS_client_method) X(SSL_CTX_new) X(SSL_CTX_free) X(SSL_CTX_ctrl) X(SSL_CTX_load_verify_locations)       \
    X(SSL_CTX_use_certificate_chain_file) X(SSL_CTX_use_PrivateKey_file) X(SSL_CTX_check_private_key)           \
    X(SSL_CTX_set_default_passwd_cb) X(SSL_CTX_set_verify) X(SSL_CTX_get0_param) X(SSL_CTX_set_info_callback)   \
    X(SSL_get0_param) X(SSL_ctrl) X(X509_VERIFY_PARAM_set1_host) X(X509_VERIFY_PARAM_get0_host)

#define SYMBOL_NAME(name) #name,
constexpr const char *kSslSymbols[] = {SSL_FUNCTIONS(SYMBOL_NAME)};
#undef SYMBOL_NAME

util::DynLib libssl("libssl.so.3", "libssl (libssl.so.3)", kSslSymbols);

struct SslApi {
#define MEMBER(name) decltype(&::name) name;
    SSL_FUNCTIONS(MEMBER)
#undef MEMBER
};

util::Result<const SslApi *> ssl_api() {
    TRY(libssl.load());
    static const SslApi *table = [] {
        static SslApi a;
#define RESOLVE(name) a.name = reinterpret_cast<decltype(&::name)>(libssl.symbol(#name));
        SSL_FUNCTIONS(RESOLVE)
#undef RESOLVE
        return &a;
    }();
    return table;
}

/// At the start of each handshake: the SNI is the name the certificate is
/// checked against (libmosquitto set the address it connected to).
void sni_from_verify_host(const SSL *ssl, int where, int) {
    if (!(where & SSL_CB_HANDSHAKE_START)) return;
    auto api = ssl_api();
    if (!api) return;
    auto *s = const_cast<SSL *>(ssl);
    if (const char *host = (*api)->X509_VERIFY_PARAM_get0_host((*api)->SSL_get0_param(s), 0))
        (*api)->SSL_ctrl(s, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, const_cast<char *>(host));
}

int refuse_passphrase(char *, int, int, void *) { return 0; }

/// The table, resolved once after a successful load().
util::Result<const Api *> api() {
    TRY(libmosquitto.load());
    static const Api *table = [] {
        static Api a;
#define RESOLVE(name) a.name = reinterpret_cast<decltype(&::name)>(libmosquitto.symbol(#name));
        MOSQ_FUNCTIONS(RESOLVE)
#undef RESOLVE
        a.mosquitto_lib_init();
        return &a;
    }();
    return table;
}

/// A key file with a passphrase is refused rather than prompting on the
/// terminal (libmosquitto's default without a callback).
int no_passphrase(char *, int, int, void *) { return 0; }

uint64_t random_u64() {
    uint64_t r = 0;
    if (::getrandom(&r, sizeof r, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof r))
        r = static_cast<uint64_t>(util::monotonic_ms()) * 0x9e3779b97f4a7c15ULL ^ static_cast<uint64_t>(::getpid());
    return r;
}

/// How long the broker's name may take to resolve (resolve.hpp).
constexpr int64_t kResolveTimeoutMs = 30000;

/// MQTT's largest packet is 268435455 bytes, topic and header included.
constexpr size_t kMaxPayload = 256 << 20;

class MosquittoClient final : public MqttClient {
public:
    MosquittoClient(const Api &api, MqttConfig config, util::EventLoop &loop, MqttHandlers handlers)
        : mq_(api), config_(std::move(config)), loop_(loop), handlers_(std::move(handlers)) {}

    ~MosquittoClient() override {
        resolver_.cancel();
        drop_watch();
        loop_.cancel(misc_timer_);
        loop_.cancel(retry_timer_);
        if (m_) mq_.mosquitto_destroy(m_);
        if (tls_ctx_) (*ssl_api())->SSL_CTX_free(tls_ctx_);
    }

    util::Status init();
    util::Status named_broker_tls();
    util::Status set_connect_properties();

    util::Status subscribe(const std::string &topic, int qos) override {
        auto known = std::find_if(subscriptions_.begin(), subscriptions_.end(),
                                  [&](const auto &s) { return s.first == topic; });
        if (known == subscriptions_.end())
            subscriptions_.emplace_back(topic, qos);
        else
            known->second = qos;
        if (!connected_) return util::ok();  // sent on connect
        int rc = call([&] { return mq_.mosquitto_subscribe(m_, nullptr, topic.c_str(), qos); });
        if (rc != MOSQ_ERR_SUCCESS) return error(rc, util::cat("subscribe ", util::quote(topic)));
        return util::ok();
    }

    util::Result<int> publish(const std::string &topic, std::string_view payload, int qos, bool retain) override {
        if (closed_) return util::Error::msg(util::cat("publish ", util::quote(topic), ": the connection is closed"));
        if (payload.size() > kMaxPayload)
            return util::Error::msg(util::cat("publish ", util::quote(topic), ": ", payload.size(),
                                              " bytes is more than MQTT carries"));
        int mid = 0;
        int rc = call([&] {
            return mq_.mosquitto_publish(m_, &mid, topic.c_str(), static_cast<int>(payload.size()), payload.data(), qos,
                                         retain);
        });
        if (rc != MOSQ_ERR_SUCCESS) return error(rc, util::cat("publish ", util::quote(topic)));
        if (qos == 0) return 0;
        unacked_[mid] = topic;
        return mid;
    }

    bool connected() const override { return connected_; }

    void close() override {
        if (closed_) return;
        closed_ = true;
        resolver_.cancel();
        loop_.cancel(retry_timer_);
        loop_.cancel(misc_timer_);
        retry_timer_ = misc_timer_ = 0;
        if (in_library_) {
            close_pending_ = true;  // finished when the library call returns
            return;
        }
        finish_close();
    }

private:
    template <typename F> int call(F &&f) {
        bool outer = !in_library_;
        in_library_ = true;
        int rc = f();
        if (outer) {
            in_library_ = false;
            if (close_pending_) {
                close_pending_ = false;
                finish_close();
            } else if (!closed_) {
                sync_watch();
            }
        }
        return rc;
    }

    /// Runs one of the library's loop functions. When it fails and closes
    /// the socket without calling on_disconnect (a TLS handshake that
    /// fails, for one), the loss is reported and retried here.
    template <typename F> void step(F &&f) {
        unsigned before = losses_;
        int err = 0;
        int rc = call([&] {
            int r = f();
            err = errno;
            return r;
        });
        if (rc == MOSQ_ERR_SUCCESS || rc == MOSQ_ERR_NO_CONN || closed_ || losses_ != before ||
            mq_.mosquitto_socket(m_) >= 0)
            return;
        drop_watch();
        lost(reason(rc, err));
    }

    util::Error error(int rc, std::string what) const {
        if (rc == MOSQ_ERR_ERRNO) return util::Error::from_errno(std::move(what));
        return util::Error::msg(util::cat(std::move(what), ": ", mq_.mosquitto_strerror(rc)));
    }

    /// Sends DISCONNECT if connected (written at once where the socket takes
    /// it; a few bytes), and stops watching. The socket closes with m_.
    void finish_close() {
        if (connected_) {
            mq_.mosquitto_disconnect(m_);
            for (int i = 0; i < 4 && mq_.mosquitto_want_write(m_); i++) mq_.mosquitto_loop_write(m_, 1);
        }
        connected_ = false;
        drop_watch();
    }

    void drop_watch() {
        if (fd_ >= 0) loop_.unwatch(fd_);
        fd_ = -1;
        events_ = 0;
    }

    /// Watches the library's current socket for what it needs now.
    void sync_watch() {
        int s = mq_.mosquitto_socket(m_);
        if (s != fd_) {
            drop_watch();
            fd_ = s;
            tcp_pending_ = s >= 0;
        }
        if (fd_ < 0) return;
        uint32_t want = EPOLLIN | (tcp_pending_ || mq_.mosquitto_want_write(m_) ? uint32_t(EPOLLOUT) : 0u);
        if (want == events_) return;
        if (!loop_.watch(fd_, want, [this](uint32_t ev) { on_ready(ev); }).ok()) {
            // Cannot happen short of ENOMEM; treated as a lost connection.
            drop_watch();
            lost("cannot watch the socket");
            return;
        }
        events_ = want;
    }

    void on_ready(uint32_t ev) {
        int fd = fd_;
        if (tcp_pending_ && (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
            // The TCP connect ended: say why it failed, before the library's
            // reads and writes replace that error with their own.
            tcp_pending_ = false;
            if (int err = socket_error(fd)) return dead_socket(err);
        }
        if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) step([&] { return mq_.mosquitto_loop_read(m_, 1); });
        if (closed_ || fd_ != fd || fd < 0) return;
        // A socket the library keeps although it is dead (its TLS handshake
        // retries on every read after a reset).
        if (ev & (EPOLLERR | EPOLLHUP)) return dead_socket(socket_error(fd));
        if (ev & EPOLLOUT) step([&] { return mq_.mosquitto_loop_write(m_, 1); });
    }

    /// Why a socket's connection failed. The error is read once: when the
    /// library's connect already met it (a refusal on loopback comes back
    /// within connect_async), a socket that never connected was refused.
    static int socket_error(int fd) {
        int err = 0;
        socklen_t len = sizeof err;
        if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
        struct sockaddr_storage peer;
        socklen_t plen = sizeof peer;
        if (!err && ::getpeername(fd, reinterpret_cast<struct sockaddr *>(&peer), &plen) != 0 && errno == ENOTCONN)
            err = ECONNREFUSED;
        return err;
    }

    /// Stops watching a socket that is dead and retries; the retry's
    /// mosquitto_reconnect_async closes it.
    void dead_socket(int err) {
        drop_watch();
        lost(err ? std::strerror(err) : "connection closed by the broker");
    }

    void start_misc_timer() {
        loop_.cancel(misc_timer_);
        // A ping is due keepalive seconds after the last packet out; the
        // broker waits 1.5 keepalives, so a check every quarter is in time.
        int64_t every = std::max<int64_t>(1000, int64_t(config_.keepalive_s) * 1000 / 4);
        misc_timer_ = loop_.after(every, [this] {
            misc_timer_ = 0;
            if (fd_ >= 0) step([&] { return mq_.mosquitto_loop_misc(m_); });
            if (!closed_) start_misc_timer();
        });
    }

    void connect_now() {
        retry_timer_ = 0;
        drop_watch();
        if (is_numeric_host(config_.host)) return connect_to(config_.host);
        // Resolved at every attempt (the address may move), off the loop.
        resolver_.start(config_.host, kResolveTimeoutMs, [this](util::Result<std::string> address) {
            if (closed_) return;
            if (!address) return lost(address.error().message());
            connect_to(*address);
        });
    }

    void connect_to(const std::string &address) {
        int err = 0;
        int rc = call([&] {
            int r = started_ && address == address_
                        ? mq_.mosquitto_reconnect_async(m_)
                        : mq_.mosquitto_connect_async(m_, address.c_str(), config_.port, config_.keepalive_s);
            err = errno;
            return r;
        });
        started_ = true;
        address_ = address;
        if (rc != MOSQ_ERR_SUCCESS) {
            drop_watch();
            lost(reason(rc, err));
        }
    }

    /// Why the connection ended or never came up, from the library's code
    /// and the errno that went with it.
    std::string reason(int rc, int err) {
        std::string why;
        if (!refused_.empty())
            why = refused_;
        else if (rc == MOSQ_ERR_TLS && !last_error_.empty())
            why = util::cat("tls: ", last_error_);
        else if (!connected_ && (rc == MOSQ_ERR_CONN_LOST || rc == MOSQ_ERR_PROTOCOL ||
                                 (rc == MOSQ_ERR_ERRNO && err == EPROTO)))
            why = "the broker closed the connection before accepting it (client certificate refused?)";
        else if (rc == MOSQ_ERR_ERRNO)
            why = std::strerror(err);
        else if (rc == MOSQ_ERR_SUCCESS)
            why = "disconnected";
        else
            why = mq_.mosquitto_strerror(rc);
        refused_.clear();
        last_error_.clear();
        return why;
    }

    /// The connection is down (or never came up): tell the caller, retry.
    void lost(std::string_view why) {
        connected_ = false;
        losses_++;
        unacked_.clear();  // a PUBACK after a reconnect is for a copy the caller does not track
        if (handlers_.on_connection) handlers_.on_connection(false, why);
        if (closed_ || retry_timer_) return;
        int64_t wait = full_jitter_backoff_ms(attempt_++, config_.reconnect_base_ms, config_.reconnect_max_ms);
        retry_timer_ = loop_.after(wait, [this] { connect_now(); });
    }

    static MosquittoClient &self(void *obj) { return *static_cast<MosquittoClient *>(obj); }

    static void on_connect(mosquitto *, void *obj, int rc) {
        auto &c = self(obj);
        if (rc != 0) {
            c.refused_ = c.config_.max_packet_bytes ? c.mq_.mosquitto_reason_string(rc) : c.mq_.mosquitto_connack_string(rc);
            return;  // the broker closes the connection: on_disconnect follows
        }
        c.connected_ = true;
        c.attempt_ = 0;
        c.refused_.clear();
        for (const auto &[topic, qos] : c.subscriptions_) c.mq_.mosquitto_subscribe(c.m_, nullptr, topic.c_str(), qos);
        if (c.handlers_.on_connection) c.handlers_.on_connection(true, "");
    }

    static void on_disconnect(mosquitto *, void *obj, int rc) {
        auto &c = self(obj);
        int err = errno;
        c.drop_watch();  // the library closed the socket
        if (c.closed_) {
            c.connected_ = false;
            return;
        }
        c.lost(c.reason(rc, err));
    }

    /// Keeps the library's last error line (OpenSSL's reason for a failed
    /// handshake is only there).
    static void on_log(mosquitto *, void *obj, int level, const char *line) {
        if ((level & MOSQ_LOG_ERR) && line) self(obj).last_error_ = line;
    }

    static void on_publish(mosquitto *, void *obj, int mid) {
        auto &c = self(obj);
        auto it = c.unacked_.find(mid);
        if (it == c.unacked_.end()) return;
        std::string topic = std::move(it->second);
        c.unacked_.erase(it);
        if (c.handlers_.on_acked) c.handlers_.on_acked(topic, mid);
    }

    static void on_message(mosquitto *, void *obj, const mosquitto_message *msg) {
        auto &c = self(obj);
        if (!c.handlers_.on_message || !msg->topic) return;
        std::string_view payload(static_cast<const char *>(msg->payload), msg->payload ? msg->payloadlen : 0);
        c.handlers_.on_message(msg->topic, payload, msg->retain);
    }

    const Api &mq_;
    MqttConfig config_;
    util::EventLoop &loop_;
    MqttHandlers handlers_;
    mosquitto *m_ = nullptr;
    int fd_ = -1;           ///< the socket watched; -1 when none
    uint32_t events_ = 0;   ///< what it is watched for
    bool tcp_pending_ = false;  ///< a new socket: EPOLLOUT until its connect completes
    bool connected_ = false;    ///< CONNACK accepted, connection not lost since
    bool started_ = false;      ///< connect_async was called once (later: reconnect_async, same address)
    std::string address_;       ///< the address connect_async was given
    bool closed_ = false;
    bool in_library_ = false;   ///< inside a libmosquitto call (its callbacks run there)
    bool close_pending_ = false;
    unsigned attempt_ = 0;      ///< failed connects since the last success
    unsigned losses_ = 0;       ///< lost() calls, to tell whether a call reported its failure
    std::string refused_;       ///< the CONNACK's refusal, reported when the socket closes
    std::string last_error_;    ///< the library's last error log line
    util::EventLoop::TimerId misc_timer_ = 0;
    util::EventLoop::TimerId retry_timer_ = 0;
    std::vector<std::pair<std::string, int>> subscriptions_;
    std::map<int, std::string> unacked_;  ///< QoS 1 message id -> topic
    Resolver resolver_{loop_};  ///< the broker's name, when it is not an address
    SSL_CTX *tls_ctx_ = nullptr;  ///< ours, for a broker given by name (named_broker_tls)
};

/// libmosquitto 2.0 sends CONNECT properties only given to the blocking
/// mosquitto_connect_bind_v5, which keeps a copy for every later
/// (re)connect, the asynchronous ones included, and checks its keepalive
/// only after taking that copy. So it is called with a keepalive it refuses
/// (1 s; MQTT allows 0 or >= 5 here): the properties are kept, nothing
/// connects, and connect_async sends them. fleet_mqtt_limits_test.py checks
/// that the broker honours the size (a library that no longer keeps them
/// fails it).
util::Status MosquittoClient::set_connect_properties() {
    mosquitto_property *props = nullptr;
    int rc = mq_.mosquitto_property_add_int32(&props, MQTT_PROP_MAXIMUM_PACKET_SIZE, config_.max_packet_bytes);
    // MQTT 5 ends a session with its connection unless told otherwise;
    // 3.1.1's persistent session (clean session off) never expires.
    if (rc == MOSQ_ERR_SUCCESS && !config_.client_id.empty())
        rc = mq_.mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL, UINT32_MAX);
    if (rc == MOSQ_ERR_SUCCESS) rc = mq_.mosquitto_connect_bind_v5(m_, config_.host.c_str(), config_.port, 1, nullptr, props);
    mq_.mosquitto_property_free_all(&props);
    if (rc != MOSQ_ERR_INVAL && rc != MOSQ_ERR_SUCCESS) return error(rc, "maximum packet size");
    return util::ok();
}

/// A broker given by name is connected to by the address the Resolver
/// found, so libmosquitto would check the certificate against (and send as
/// SNI) that address. Instead the client brings the whole TLS context
/// (MOSQ_OPT_SSL_CTX without the library's defaults, so the library adds
/// neither settings nor its own checks): the broker's CA, this device's
/// certificate and key (a passphrase refused), TLS 1.2 or later, peer
/// verification, and verification parameters naming the host, which
/// OpenSSL checks the certificate against during the handshake, failing it
/// otherwise; an info callback sets the SNI to the name. Freed after
/// mosquitto_destroy (the library does not free a context it was given).
util::Status MosquittoClient::named_broker_tls() {
    const SslApi *ssl = TRY(ssl_api());
    tls_ctx_ = ssl->SSL_CTX_new(ssl->TLS_client_method());
    if (!tls_ctx_) return util::Error::msg("tls: SSL_CTX_new failed");
    auto fail = [&](std::string what) { return util::Error::msg(util::cat("tls: ", what)); };
    if (ssl->SSL_CTX_ctrl(tls_ctx_, SSL_CTRL_SET_MIN_PROTO_VERSION, TLS1_2_VERSION, nullptr) != 1)
        return fail("cannot require TLS 1.2");
    if (ssl->SSL_CTX_load_verify_locations(tls_ctx_, config_.ca_file.c_str(), nullptr) != 1)
        return fail(util::cat("cannot load the ca file ", util::quote(config_.ca_file)));
    if (!config_.cert_file.empty()) {
        ssl->SSL_CTX_set_default_passwd_cb(tls_ctx_, refuse_passphrase);
        if (ssl->SSL_CTX_use_certificate_chain_file(tls_ctx_, config_.cert_file.c_str()) != 1 ||
            ssl->SSL_CTX_use_PrivateKey_file(tls_ctx_, config_.key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
            ssl->SSL_CTX_check_private_key(tls_ctx_) != 1)
            return fail(util::cat("cannot load the certificate ", util::quote(config_.cert_file), " with its key"));
    }
    ssl->SSL_CTX_set_verify(tls_ctx_, SSL_VERIFY_PEER, nullptr);
    if (ssl->X509_VERIFY_PARAM_set1_host(ssl->SSL_CTX_get0_param(tls_ctx_), config_.host.c_str(), config_.host.size()) != 1)
        return fail(util::cat("cannot check the certificate against ", util::quote(config_.host)));
    ssl->SSL_CTX_set_info_callback(tls_ctx_, sni_from_verify_host);
    int rc = mq_.mosquitto_void_option(m_, MOSQ_OPT_SSL_CTX, tls_ctx_);
    if (rc == MOSQ_ERR_SUCCESS) rc = mq_.mosquitto_int_option(m_, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0);
    if (rc != MOSQ_ERR_SUCCESS) return error(rc, "tls context");
    return util::ok();
}

util::Status readable(const std::string &path, const char *what) {
    if (::access(path.c_str(), R_OK) != 0) return util::Error::from_errno(util::cat(what, " ", util::quote(path)));
    return util::ok();
}

util::Status MosquittoClient::init() {
    m_ = config_.client_id.empty() ? mq_.mosquitto_new(nullptr, true, this)
                                   : mq_.mosquitto_new(config_.client_id.c_str(), false, this);
    if (!m_) return util::Error::from_errno("mosquitto_new");
    mq_.mosquitto_int_option(m_, MOSQ_OPT_PROTOCOL_VERSION, config_.max_packet_bytes ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311);
    if (config_.max_packet_bytes) TRY(set_connect_properties());
    if (!config_.ca_file.empty()) {
        TRY(readable(config_.ca_file, "ca file"));
        const char *cert = config_.cert_file.empty() ? nullptr : config_.cert_file.c_str();
        const char *key = config_.key_file.empty() ? nullptr : config_.key_file.c_str();
        if (cert) TRY(readable(config_.cert_file, "certificate"));
        if (key) TRY(readable(config_.key_file, "key"));
        if (!cert != !key) return util::Error::msg("a client certificate needs its key, and a key its certificate");
        int rc = mq_.mosquitto_tls_set(m_, config_.ca_file.c_str(), nullptr, cert, key, no_passphrase);
        if (rc != MOSQ_ERR_SUCCESS) return error(rc, "tls");
        rc = mq_.mosquitto_tls_opts_set(m_, 1 /* SSL_VERIFY_PEER */, nullptr, nullptr);  // default versions
        if (rc != MOSQ_ERR_SUCCESS) return error(rc, "tls options");
        if (!is_numeric_host(config_.host)) TRY(named_broker_tls());  // connected by address
    }
    if (!config_.will_topic.empty()) {
        int rc = mq_.mosquitto_will_set(m_, config_.will_topic.c_str(), static_cast<int>(config_.will_payload.size()),
                                        config_.will_payload.data(), 1, true);
        if (rc != MOSQ_ERR_SUCCESS) return error(rc, util::cat("will on ", util::quote(config_.will_topic)));
    }
    mq_.mosquitto_connect_callback_set(m_, on_connect);
    mq_.mosquitto_disconnect_callback_set(m_, on_disconnect);
    mq_.mosquitto_publish_callback_set(m_, on_publish);
    mq_.mosquitto_message_callback_set(m_, on_message);
    mq_.mosquitto_log_callback_set(m_, on_log);
    start_misc_timer();
    connect_now();
    return util::ok();
}

}  // namespace

util::Result<std::unique_ptr<MqttClient>> MqttClient::open(const MqttConfig &config, util::EventLoop &loop,
                                                           MqttHandlers handlers) {
    std::string where = broker_name(config);
    if (config.host.empty()) return util::Error::msg("mqtt: no broker host");
    if (config.port <= 0 || config.port > 65535) return util::Error::msg(util::cat(where, ": bad port"));
    if (config.keepalive_s < 5 || config.keepalive_s > 65535)
        return util::Error::msg(util::cat(where, ": keepalive must be 5 to 65535 s"));
    if (!config.client_id.empty() && !valid_topic_level(config.client_id))
        return util::Error::msg(util::cat(where, ": bad client id ", util::quote(config.client_id)));
    const Api *a = TRY_CTX(api(), where);
    auto client = std::make_unique<MosquittoClient>(*a, config, loop, std::move(handlers));
    TRY_CTX(client->init(), where);
    return std::unique_ptr<MqttClient>(std::move(client));
}

std::string broker_name(const MqttConfig &config) {
    bool v6 = config.host.find(':') != std::string::npos;
    return util::cat("mqtt ", v6 ? "[" : "", config.host, v6 ? "]" : "", ":", config.port);
}

int64_t full_jitter_backoff_ms(unsigned attempt, int64_t base_ms, int64_t cap_ms) {
    int64_t window = base_ms < 1 ? 1 : base_ms;
    for (unsigned i = 0; i < attempt && window < cap_ms; i++) window *= 2;
    if (window > cap_ms) window = cap_ms < 1 ? 1 : cap_ms;
    return static_cast<int64_t>(random_u64() % static_cast<uint64_t>(window + 1));
}

bool valid_topic_level(std::string_view s) {
    if (s.empty() || s.size() > 64 || s == "." || s == "..") return false;
    for (char c : s)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-'))
            return false;
    return true;
}

std::string timestamp_topic(std::string_view fleet) { return util::cat("berth/", fleet, "/timestamp"); }

std::string status_topic(std::string_view fleet, std::string_view device_id) {
    return util::cat("berth/", fleet, "/devices/", device_id, "/status");
}

}  // namespace fleet
