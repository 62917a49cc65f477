// Typed errors of the engine; the bindings map each to a Python exception class.
#pragma once

#include <stdexcept>
#include <string>

namespace ignite {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class InvalidArgument : public Error {
 public:
  using Error::Error;
};

class NotFound : public Error {
 public:
  using Error::Error;
};

class IoError : public Error {
 public:
  using Error::Error;
};

class Cancelled : public Error {
 public:
  using Error::Error;
};

}  // namespace ignite
