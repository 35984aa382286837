// JSON helpers; see json.hpp.
#include "util/json.hpp"

#include "util/strings.hpp"

namespace util::json {
namespace {

constexpr size_t kMaxDepth = 512;

/// nlohmann's DOM builder, keeping the parse error instead of throwing and
/// refusing nesting deep enough to exhaust the stack on dump or destroy.
class Sax : public nlohmann::detail::json_sax_dom_parser<Value> {
public:
    using Base = nlohmann::detail::json_sax_dom_parser<Value>;
    explicit Sax(Value &v) : Base(v, false) {}

    bool start_object(std::size_t n) { return ++depth_ <= kMaxDepth ? Base::start_object(n) : too_deep(); }
    bool start_array(std::size_t n) { return ++depth_ <= kMaxDepth ? Base::start_array(n) : too_deep(); }
    bool end_object() { --depth_; return Base::end_object(); }
    bool end_array() { --depth_; return Base::end_array(); }
    bool parse_error(std::size_t, const std::string &, const nlohmann::detail::exception &ex) {
        std::string_view w = ex.what();
        // "[json.exception.parse_error.101] parse error at line 1, column 5: ..."
        if (auto p = w.find("] "); p != std::string_view::npos) w.remove_prefix(p + 2);
        if (w.starts_with("parse error at ")) w.remove_prefix(15);
        message = std::string(w);
        return false;
    }

    std::string message;

private:
    bool too_deep() {
        message = cat("nesting deeper than ", kMaxDepth, " levels");
        return false;
    }
    size_t depth_ = 0;
};

Error type_error(std::string_view where, std::string_view key, std::string_view expected, const Value &got) {
    return Error::with_code(EINVAL, cat(quote(field_path(where, key)), ": expected ", expected, ", got ", type_name(got)));
}

const Value *find(const Value &obj, std::string_view key) {
    if (!obj.is_object()) return nullptr;
    auto it = obj.find(std::string(key));
    if (it == obj.end() || it->is_null()) return nullptr;
    return &*it;
}

}  // namespace

Result<Value> parse(std::string_view text, std::string_view what) {
    Value v;
    Sax sax(v);
    bool good = Value::sax_parse(text.begin(), text.end(), &sax, nlohmann::detail::input_format_t::json, true);
    if (!good || sax.is_errored()) {
        std::string m = sax.message.empty() ? std::string("invalid JSON") : sax.message;
        return Error::with_code(EINVAL, cat(what, ": ", m));
    }
    return v;
}

std::string dump(const Value &v, int indent) { return v.dump(indent, ' ', false, Value::error_handler_t::replace); }

const char *type_name(const Value &v) {
    switch (v.type()) {
    case Value::value_t::null: return "null";
    case Value::value_t::object: return "an object";
    case Value::value_t::array: return "an array";
    case Value::value_t::string: return "a string";
    case Value::value_t::boolean: return "a boolean";
    case Value::value_t::number_integer:
    case Value::value_t::number_unsigned: return "an integer";
    case Value::value_t::number_float: return "a number";
    default: return "a value";
    }
}

std::string field_path(std::string_view parent, std::string_view key) {
    if (parent.empty()) return std::string(key);
    return cat(parent, '.', key);
}

Result<std::optional<std::string>> opt_string(const Value &obj, std::string_view key, std::string_view where) {
    const Value *v = find(obj, key);
    if (!v) return std::optional<std::string>();
    if (!v->is_string()) return type_error(where, key, "a string", *v);
    return std::optional<std::string>(v->get<std::string>());
}

Result<std::string> req_string(const Value &obj, std::string_view key, std::string_view where) {
    auto s = TRY(opt_string(obj, key, where));
    if (!s) return Error::with_code(EINVAL, cat(quote(field_path(where, key)), ": missing"));
    return std::move(*s);
}

Result<std::optional<int64_t>> opt_int(const Value &obj, std::string_view key, std::string_view where) {
    const Value *v = find(obj, key);
    if (!v) return std::optional<int64_t>();
    if (v->is_number_integer()) {
        if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
            return type_error(where, key, "an integer that fits 64 bits", *v);
        return std::optional<int64_t>(v->get<int64_t>());
    }
    return type_error(where, key, "an integer", *v);
}

Result<std::optional<uint64_t>> opt_uint(const Value &obj, std::string_view key, std::string_view where) {
    const Value *v = find(obj, key);
    if (!v) return std::optional<uint64_t>();
    if (v->is_number_unsigned()) return std::optional<uint64_t>(v->get<uint64_t>());
    // Values built in code ({"errnoRet", 38}) are stored signed even when positive.
    if (v->is_number_integer()) {
        if (v->get<int64_t>() >= 0) return std::optional<uint64_t>(static_cast<uint64_t>(v->get<int64_t>()));
        return Error::with_code(EINVAL, cat(quote(field_path(where, key)), ": must not be negative"));
    }
    return type_error(where, key, "an unsigned integer", *v);
}

Result<std::optional<double>> opt_number(const Value &obj, std::string_view key, std::string_view where) {
    const Value *v = find(obj, key);
    if (!v) return std::optional<double>();
    if (!v->is_number()) return type_error(where, key, "a number", *v);
    return std::optional<double>(v->get<double>());
}

Result<std::optional<bool>> opt_bool(const Value &obj, std::string_view key, std::string_view where) {
    const Value *v = find(obj, key);
    if (!v) return std::optional<bool>();
    if (!v->is_boolean()) return type_error(where, key, "a boolean", *v);
    return std::optional<bool>(v->get<bool>());
}

Result<const Value *> opt_object(const Value &obj, std::string_view key, std::string_view where) {
    const Value *v = find(obj, key);
    if (v && !v->is_object()) return type_error(where, key, "an object", *v);
    return v;
}

Result<const Value *> opt_array(const Value &obj, std::string_view key, std::string_view where) {
    const Value *v = find(obj, key);
    if (v && !v->is_array()) return type_error(where, key, "an array", *v);
    return v;
}

Result<std::vector<std::string>> opt_string_array(const Value &obj, std::string_view key, std::string_view where) {
    std::vector<std::string> out;
    const Value *v = TRY(opt_array(obj, key, where));
    if (!v) return out;
    for (size_t i = 0; i < v->size(); i++) {
        const Value &item = (*v)[i];
        if (!item.is_string())
            return Error::with_code(EINVAL, cat(quote(cat(field_path(where, key), '[', i, ']')), ": expected a string, got ",
                                                type_name(item)));
        out.push_back(item.get<std::string>());
    }
    return out;
}

Status expect_object(const Value &v, std::string_view where) {
    if (!v.is_object())
        return Error::with_code(EINVAL, cat(where.empty() ? std::string("document") : quote(where), ": expected an object, got ",
                                            type_name(v)));
    return ok();
}

}  // namespace util::json
