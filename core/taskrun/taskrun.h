/* taskrun.h — both halves of taskrun's public headers: <taskrun/plugin.h> for plugin
 * authors and <taskrun/pool.h> for programs that run a pool themselves.
 */
#ifndef TASKRUN_H
#define TASKRUN_H

#include <taskrun/plugin.h>
#include <taskrun/pool.h>

#endif /* TASKRUN_H */
