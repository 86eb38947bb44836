#ifndef NH_ERROR_H
#define NH_ERROR_H

/*
 * Return codes of the worker functions. Functions return NH_OK or one of
 * the negative codes below; results go to out-parameters.
 */
#define NH_OK        0
/* Failed; the function logged or stored a message saying why. */
#define NH_ERROR    -1
/* A dependency (PostgreSQL, Kafka) is unavailable now: try again later. */
#define NH_EAGAIN   -2
#define NH_ENOMEM   -3
/* The thing looked up does not exist (no row, no such partition). */
#define NH_ENOENT   -4
/* The thing to add is already there. */
#define NH_EEXIST   -5

#endif /* NH_ERROR_H */
