// The store's RocksDB info log: see infolog.go.

#include <sys/stat.h>
#include <sys/time.h>

#include <cstdarg>
#include <cstdio>
#include <ctime>
#include <memory>
#include <mutex>
#include <string>

#include <rocksdb/c.h>
#include <rocksdb/env.h>

// The C API's handle on a logger, as RocksDB's db/c.cc defines it.
struct rocksdb_logger_t {
  std::shared_ptr<rocksdb::Logger> rep;
};

namespace {

constexpr off_t kMaxLogBytes = 1 << 20;

// WarnLogger appends warnings and errors to a file it opens at the first
// one, first renaming it to LOG.old once it is past kMaxLogBytes.
// Informational lines and headers (the option dumps of every open) are
// dropped.
class WarnLogger : public rocksdb::Logger {
 public:
  explicit WarnLogger(std::string path)
      : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL),
        path_(std::move(path)) {}

  ~WarnLogger() override {
    if (f_ != nullptr) {
      fclose(f_);
    }
  }

  void LogHeader(const char*, va_list) override {}

  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (f_ == nullptr) {
      struct stat st;
      if (stat(path_.c_str(), &st) == 0 && st.st_size > kMaxLogBytes) {
        rename(path_.c_str(), (path_ + ".old").c_str());
      }
      f_ = fopen(path_.c_str(), "ae");
      if (f_ == nullptr) {
        return;  // a reader without write access to the store
      }
    }
    struct timeval tv;
    gettimeofday(&tv, nullptr);
    struct tm t;
    localtime_r(&tv.tv_sec, &t);
    fprintf(f_, "%04d/%02d/%02d-%02d:%02d:%02d.%06ld ", t.tm_year + 1900,
            t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec,
            static_cast<long>(tv.tv_usec));
    vfprintf(f_, format, ap);
    fputc('\n', f_);
    fflush(f_);
  }

 private:
  std::string path_;
  std::mutex mu_;
  FILE* f_ = nullptr;
};

}  // namespace

// Returns 0 when the logger is set; exceptions must not cross into Go.
extern "C" int nexis_set_warn_info_log(rocksdb_options_t* opts,
                                       const char* path) noexcept {
  try {
    rocksdb_logger_t l{std::make_shared<WarnLogger>(path)};
    rocksdb_options_set_info_log(opts, &l);
    return 0;
  } catch (...) {
    return -1;
  }
}
